"""Pub/Sub: topics, push subscriptions (OIDC, backoff, dead letters) and who may publish."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from infra import spec as specs
from infra.deploy.common import (
    Context,
    policy_change,
    read_or_none,
    send,
)
from infra.deploy.model import (
    Change,
    diff,
    dig,
    seconds,
)


def stage_topics(context: Context) -> list[Change]:
    topics = context.clients.pubsub.projects().topics()
    changes = []
    for topic in context.spec.topics:
        name = f"projects/{context.project}/topics/{topic.name}"
        live = read_or_none(context, topics.get(topic=name))
        if live is None:

            def create(name: str = name) -> None:
                send(
                    context,
                    topics.create(name=name, body={"labels": {specs.MANAGED_LABEL: "true"}}),
                )

            changes.append(Change("topic", topic.name, "create", run=create))
        else:
            changes.append(Change("topic", topic.name, "unchanged"))

        def read(name: str = name) -> Mapping[str, Any] | None:
            return read_or_none(context, topics.getIamPolicy(resource=name))

        def write(policy: dict[str, Any], name: str = name) -> Any:
            return topics.setIamPolicy(resource=name, body={"policy": policy}).execute()

        wanted = {specs.ROLE_PUBLISHER: topic.publishers}
        changes.append(policy_change(context, "topic", topic.name, read, write, wanted))
    return changes


def _subscription_body(context: Context, wanted: specs.SubscriptionDeploy) -> dict[str, Any]:
    topic_path = f"projects/{context.project}/topics/"
    body: dict[str, Any] = {
        "topic": topic_path + wanted.topic,
        "ackDeadlineSeconds": wanted.ack_deadline_s,
        "messageRetentionDuration": f"{wanted.retention_s}s",
        # An empty policy: never expire (the default deletes a subscription idle for 31 days,
        # and the re-match topic can be quiet for longer).
        "expirationPolicy": {},
        "labels": {specs.MANAGED_LABEL: "true"},
    }
    if wanted.push_endpoint:
        body["pushConfig"] = {
            "pushEndpoint": wanted.push_endpoint,
            "oidcToken": {
                "serviceAccountEmail": wanted.oidc_service_account,
                "audience": wanted.audience,
            },
        }
        body["retryPolicy"] = {
            "minimumBackoff": f"{wanted.min_backoff_s}s",
            "maximumBackoff": f"{wanted.max_backoff_s}s",
        }
    if wanted.dead_letter_topic:
        body["deadLetterPolicy"] = {
            "deadLetterTopic": topic_path + wanted.dead_letter_topic,
            "maxDeliveryAttempts": wanted.max_delivery_attempts,
        }
    return body


# View key -> the subscription field an update mask names.
_SUBSCRIPTION_MASK = {
    "topic": "topic",
    "push endpoint": "pushConfig",
    "push identity": "pushConfig",
    "push audience": "pushConfig",
    "ack deadline s": "ackDeadlineSeconds",
    "retention s": "messageRetentionDuration",
    "expires after s": "expirationPolicy",
    "min backoff s": "retryPolicy",
    "max backoff s": "retryPolicy",
    "dead-letter topic": "deadLetterPolicy",
    "max delivery attempts": "deadLetterPolicy",
}


def _subscription_view(body: Mapping[str, Any]) -> dict[str, Any]:
    ttl = dig(body, "expirationPolicy.ttl", "")
    view: dict[str, Any] = {
        "topic": body.get("topic"),
        "ack deadline s": body.get("ackDeadlineSeconds", 10),
        "retention s": seconds(body.get("messageRetentionDuration", "604800s")),
        "expires after s": seconds(ttl) if "expirationPolicy" in body else 2678400.0,
        "push endpoint": dig(body, "pushConfig.pushEndpoint", ""),
        "push identity": dig(body, "pushConfig.oidcToken.serviceAccountEmail", ""),
        "push audience": dig(body, "pushConfig.oidcToken.audience", ""),
        "dead-letter topic": dig(body, "deadLetterPolicy.deadLetterTopic", ""),
        "max delivery attempts": dig(body, "deadLetterPolicy.maxDeliveryAttempts", 0),
    }
    if view["push endpoint"]:
        view["min backoff s"] = seconds(dig(body, "retryPolicy.minimumBackoff", "10s"))
        view["max backoff s"] = seconds(dig(body, "retryPolicy.maximumBackoff", "600s"))
    return view


def stage_subscriptions(context: Context) -> list[Change]:
    subscriptions = context.clients.pubsub.projects().subscriptions()
    changes = []
    for wanted in context.spec.subscriptions:
        name = f"projects/{context.project}/subscriptions/{wanted.name}"
        body = _subscription_body(context, wanted)
        wanted_view = _subscription_view(body)
        live = read_or_none(context, subscriptions.get(subscription=name))
        if live is None:

            def create(name: str = name, body: dict[str, Any] = body) -> None:
                send(context, subscriptions.create(name=name, body=body))

            changes.append(
                Change("subscription", wanted.name, "create", diff(None, wanted_view), run=create)
            )
        else:
            changed = diff(_subscription_view(live), wanted_view)
            notes = [
                f"its topic is {c.before}, the spec says {c.after}: a subscription's topic "
                "cannot change; delete it and apply again"
                for c in changed
                if c.key == "topic"
            ]
            changed = [c for c in changed if c.key != "topic"]
            if changed:
                mask = sorted({_SUBSCRIPTION_MASK[c.key] for c in changed})

                def patch(
                    name: str = name, body: dict[str, Any] = body, mask: list[str] = mask
                ) -> None:
                    update = {key: body[key] for key in mask if key in body}
                    send(
                        context,
                        subscriptions.patch(
                            name=name,
                            body={"subscription": update, "updateMask": ",".join(mask)},
                        ),
                    )

                changes.append(Change("subscription", wanted.name, "update", changed, notes, patch))
            else:
                changes.append(Change("subscription", wanted.name, "unchanged", notes=notes))

        def read(name: str = name) -> Mapping[str, Any] | None:
            return read_or_none(context, subscriptions.getIamPolicy(resource=name))

        def write(policy: dict[str, Any], name: str = name) -> Any:
            return subscriptions.setIamPolicy(resource=name, body={"policy": policy}).execute()

        roles = {specs.ROLE_SUBSCRIBER: wanted.subscribers}
        changes.append(policy_change(context, "subscription", wanted.name, read, write, roles))
    return changes
