"""Cloud Monitoring: e-mail notification channels and one log-based alert per ERROR event."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from infra import spec as specs
from infra.deploy.common import (
    Context,
    read_or_none,
    send,
)
from infra.deploy.model import (
    Change,
    FieldChange,
    diff,
    dig,
    seconds,
)


def _list_all(context: Context, method: Callable[..., Any], key: str, **kwargs: Any) -> list[Any]:
    items: list[Any] = []
    token = ""
    while True:
        page = (
            read_or_none(context, method(**kwargs, **({"pageToken": token} if token else {}))) or {}
        )
        items += page.get(key, [])
        token = page.get("nextPageToken", "")
        if not token:
            return items


def _email_channels(context: Context) -> dict[str, str]:
    """Live e-mail notification channels: address -> channel name."""
    channels = context.clients.monitoring.projects().notificationChannels()
    found = _list_all(
        context, channels.list, "notificationChannels", name=f"projects/{context.project}"
    )
    return {
        str(dig(channel, "labels.email_address", "")).lower(): str(channel["name"])
        for channel in found
        if channel.get("type") == "email"
    }


def stage_notification_channels(context: Context) -> list[Change]:
    channels = context.clients.monitoring.projects().notificationChannels()
    live = _email_channels(context)
    changes = []
    for email in context.spec.alert_emails:
        if email in live:
            changes.append(Change("notification channel", email, "unchanged"))
            continue

        def create(email: str = email) -> None:
            body = {
                "type": "email",
                "displayName": f"CRM alerts: {email}",
                "labels": {"email_address": email},
                "enabled": True,
            }
            send(context, channels.create(name=f"projects/{context.project}", body=body))

        changes.append(Change("notification channel", email, "create", run=create))
    return changes


def _alert_body(alert: specs.AlertPolicyDeploy, channel_names: list[str]) -> dict[str, Any]:
    return {
        "displayName": alert.display_name,
        "documentation": {"content": alert.documentation, "mimeType": "text/markdown"},
        "userLabels": {"crm-alert": alert.event},
        "conditions": [
            {
                "displayName": f"ERROR event {alert.event}",
                "conditionMatchedLog": {"filter": alert.filter},
            }
        ],
        "combiner": "OR",
        "alertStrategy": {
            "notificationRateLimit": {"period": f"{alert.rate_limit_s}s"},
            "autoClose": f"{alert.auto_close_s}s",
        },
        "notificationChannels": channel_names,
        "severity": "ERROR",
        "enabled": True,
    }


def _alert_view(body: Mapping[str, Any], channel_emails: Mapping[str, str]) -> dict[str, Any]:
    conditions = body.get("conditions", [])
    first = conditions[0] if conditions else {}
    return {
        "displayName": body.get("displayName"),
        "documentation": dig(body, "documentation.content", ""),
        "filter": dig(first, "conditionMatchedLog.filter", ""),
        "conditions": len(conditions),
        "combiner": body.get("combiner", ""),
        "rate limit s": seconds(dig(body, "alertStrategy.notificationRateLimit.period", "0s")),
        "auto close s": seconds(dig(body, "alertStrategy.autoClose", "0s")),
        "notify": sorted(channel_emails.get(n, n) for n in body.get("notificationChannels", [])),
        "severity": body.get("severity", ""),
        "enabled": body.get("enabled", True),
    }


_ALERT_MASK = {
    "displayName": "display_name",
    "documentation": "documentation",
    "filter": "conditions",
    "conditions": "conditions",
    "combiner": "combiner",
    "rate limit s": "alert_strategy",
    "auto close s": "alert_strategy",
    "notify": "notification_channels",
    "severity": "severity",
    "enabled": "enabled",
}


def stage_alert_policies(context: Context) -> list[Change]:
    policies = context.clients.monitoring.projects().alertPolicies()
    by_email = _email_channels(context)
    by_name = {name: email for email, name in by_email.items()}
    live_policies = {
        dig(policy, "userLabels.crm-alert", ""): policy
        for policy in _list_all(
            context, policies.list, "alertPolicies", name=f"projects/{context.project}"
        )
    }
    changes = []
    for alert in context.spec.alerts:
        # Channels not created yet (plan) are shown by address; apply creates them first.
        names = [by_email.get(email, email) for email in alert.notification_emails]
        body = _alert_body(alert, names)
        wanted_view = _alert_view(body, by_name)
        live = live_policies.get(alert.event)
        if live is None:

            def create(alert: specs.AlertPolicyDeploy = alert) -> None:
                channels = _email_channels(context)
                body = _alert_body(alert, [channels[e] for e in alert.notification_emails])
                send(context, policies.create(name=f"projects/{context.project}", body=body))

            changes.append(
                Change(
                    "alert policy",
                    alert.event,
                    "create",
                    [FieldChange("filter", None, alert.filter)],
                    run=create,
                )
            )
            continue
        changed = diff(_alert_view(live, by_name), wanted_view)
        if not changed:
            changes.append(Change("alert policy", alert.event, "unchanged"))
            continue
        mask = sorted({_ALERT_MASK[c.key] for c in changed})

        def patch(
            alert: specs.AlertPolicyDeploy = alert, mask: list[str] = mask, name: str = live["name"]
        ) -> None:
            channels = _email_channels(context)
            body = _alert_body(alert, [channels[e] for e in alert.notification_emails])
            send(context, policies.patch(name=name, updateMask=",".join(mask), body=body))

        changes.append(Change("alert policy", alert.event, "update", changed, run=patch))
    return changes
