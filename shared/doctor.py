"""``python -m shared.cli doctor``: check a configuration and say, in words, what is wrong and how
to fix it.

Why a doctor: most of what stops a fund's first run is outside this code (a scope missing from
the Workspace delegation grant, a topic Gmail may not publish to, an OAuth client id not set),
and each shows up late and far from its cause: a sync that fails at 3 a.m., a watch that never
fires. Each check here does the real thing once (mints a token per mailbox and scope, fetches
the certificates, reads the topic's policy, logs in to SMTP) and names the fix.

Required checks decide the exit status (0 only when every one passes); optional ones (SMTP, the
narrator: the digest works without them) are reported but never fail the run. A check for a
feature that is not configured is skipped and says so. Nothing printed can hold a secret: every
line goes through the log redaction (``shared.logging.redact``), which knows every secret value
read and anything shaped like a credential, and no check quotes a value it read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from shared import wiring
from shared.errors import AppError

if TYPE_CHECKING:
    from shared.adapters.auth import TrustAnchor
    from shared.config import Settings

Status = Literal["ok", "fail", "skip", "warn"]

GMAIL_PUSH_MEMBER = "serviceAccount:gmail-api-push@system.gserviceaccount.com"
PUBLISHER_ROLE = "roles/pubsub.publisher"
DELEGATION_PLACE = (
    "Workspace Admin console > Security > Access and data control > API controls > "
    "Domain-wide delegation"
)
ORG_POLICY_NOTE = (
    "if adding it is refused, an organisation policy (Domain restricted sharing, "
    "constraints/iam.allowedPolicyMemberDomains) blocks identities outside your organisation: "
    "an organisation policy admin must allow it for this project"
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: Status
    detail: str
    fix: str = ""
    optional: bool = False

    @property
    def failed_required(self) -> bool:
        return self.status == "fail" and not self.optional


class Doctor:
    """Runs the checks in order; a failed settings check stops the rest (nothing else can be
    built from settings that do not parse)."""

    def __init__(self, *, mailboxes: Sequence[str] = ()) -> None:
        self.mailboxes = [m.strip().lower() for m in mailboxes if m.strip()]
        self.results: list[CheckResult] = []
        self._anchors: tuple[TrustAnchor, ...] = ()

    def add(
        self, name: str, status: Status, detail: str, fix: str = "", *, optional: bool = False
    ) -> None:
        self.results.append(CheckResult(name, status, detail, fix, optional))

    def run(self) -> list[CheckResult]:
        settings = self.check_settings()
        if settings is None:
            return self.results
        for check in (
            self.check_trust_anchors,
            self.check_people_audience,
            self.check_team_domains,
            self.check_secrets,
            self.check_delegation,
            self.check_watch,
            self.check_firestore,
            self.check_smtp,
            self.check_narrator,
        ):
            try:
                check(settings)
            except Exception as exc:  # a check that crashes is a failed check, never a traceback
                self.add(check.__name__.removeprefix("check_"), "fail", _describe(exc))
        return self.results

    # -- settings and trust ----------------------------------------------------------------------

    def check_settings(self) -> Settings | None:
        from pydantic import ValidationError

        try:
            settings = wiring.get_settings()
        except ValidationError as exc:
            problems = "; ".join(
                f"CRM_{'_'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
                for error in exc.errors()
            )
            self.add("settings", "fail", f"invalid: {problems}", "fix the variables named")
            return None
        self.add("settings", "ok", f"valid (mode {settings.mode}, store {settings.store_backend})")
        return settings

    def check_trust_anchors(self, settings: Settings) -> None:
        from shared.adapters.auth import anchors_for_settings
        from shared.errors import ConfigurationError

        try:
            key = wiring.local_key() if settings.mode != "cloud" else None
            anchors = anchors_for_settings(settings, key)
        except ConfigurationError as exc:
            self.add("trust anchors", "fail", exc.message)
            return
        self._anchors = anchors
        described = "; ".join(
            f"{a.name} ({', '.join(sorted(k.value for k in a.kinds))})" for a in anchors
        )
        self.add("trust anchors", "ok", described)

    def check_people_audience(self, settings: Settings) -> None:
        if not settings.people_audience:
            self.add(
                "people audience",
                "fail",
                "CRM_PEOPLE_AUDIENCE is empty: nobody can sign in",
                "set it to the OAuth client id of the console (Google Cloud console > APIs & "
                "Services > Credentials > OAuth 2.0 Client IDs, type Web application)",
            )
        else:
            self.add("people audience", "ok", f"people sign in to {settings.people_audience}")
        for anchor in self._anchors:  # none when the anchors check failed: said there
            if anchor.certs_url:
                self._check_certs(anchor.name, anchor.certs_url)

    def _check_certs(self, name: str, url: str) -> None:
        import requests

        check = f"{name} certificates"
        try:
            response = requests.get(url, timeout=10, allow_redirects=False)
        except requests.RequestException as exc:
            self.add(
                check,
                "fail",
                f"{url} is not reachable ({type(exc).__name__})",
                "check CRM_TOKEN_CERTS_URL and this machine's outbound HTTPS",
            )
            return
        if response.status_code != 200:
            self.add(check, "fail", f"{url} answered HTTP {response.status_code}")
            return
        try:
            body: Any = response.json()
        except ValueError:
            body = None
        count = 0
        if isinstance(body, dict):
            keys = body.get("keys")
            count = (
                len(keys)
                if isinstance(keys, list)
                else sum(1 for v in body.values() if isinstance(v, str) and "BEGIN" in v)
            )
        if count == 0:
            self.add(check, "fail", f"{url} holds no signing keys (not a certs or JWKS document)")
            return
        self.add(check, "ok", f"{count} signing key(s) at {url}")

    def check_team_domains(self, settings: Settings) -> None:
        team = wiring.team_domains()
        fix = "set CRM_TEAM_DOMAINS to the fund's mail domains, comma-separated"
        if settings.mode == "cloud" and not settings.team_domains:
            self.add(
                "team domains", "fail", "CRM_TEAM_DOMAINS is empty (required on the cloud)", fix
            )
        elif not team.domains:
            self.add("team domains", "fail", "no team domain is set or can be derived", fix)
        else:
            self.add("team domains", "ok", f"{', '.join(sorted(team.domains))} ({team.source})")

    # -- secrets and Gmail -------------------------------------------------------------------------

    def check_secrets(self, settings: Settings) -> None:
        where = (
            "Secret Manager"
            if settings.secrets_backend == "secret_manager"
            else "env/secrets folder"
        )
        named = [
            ("CRM_GMAIL_KEY_SECRET", settings.gmail_key_secret, False),
            ("CRM_SMTP_PASSWORD_SECRET", settings.smtp_password_secret, True),
            ("CRM_NARRATOR_KEY_SECRET", settings.narrator_key_secret, True),
        ]
        if not any(name for _, name, _ in named):
            self.add("secrets", "skip", "no secret is configured")
            return
        for variable, name, optional in named:
            if not name:
                continue
            try:
                value = wiring.secrets().get(name)
            except AppError as exc:
                self.add(f"secret {name}", "fail", exc.message, optional=optional)
                continue
            except Exception as exc:
                self.add(
                    f"secret {name}",
                    "fail",
                    f"cannot read it from {where}: {_describe(exc)}",
                    "the runtime identity needs roles/secretmanager.secretAccessor on it"
                    if where == "Secret Manager"
                    else "",
                    optional=optional,
                )
                continue
            if variable == "CRM_GMAIL_KEY_SECRET":
                from shared.adapters.gmail.credentials import parse_key_secret

                try:
                    parse_key_secret(value, secret=name)
                except AppError as exc:
                    self.add(f"secret {name}", "fail", exc.message)
                    continue
            self.add(
                f"secret {name}", "ok", f"readable from {where} ({variable})", optional=optional
            )

    def _client_id(self, settings: Settings) -> str:
        info = _key_info(settings)
        return str(info.get("client_id", "")) if info else ""

    def check_delegation(self, settings: Settings) -> None:
        from shared.adapters.gmail.credentials import SCOPE_COMPOSE, SCOPE_READONLY

        if settings.mode != "sandbox" and not (
            settings.gmail_key_secret or settings.gmail_service_account
        ):
            self.add(
                "gmail delegation",
                "fail",
                "neither CRM_GMAIL_KEY_SECRET (a key) nor CRM_GMAIL_SERVICE_ACCOUNT (keyless) "
                "is set: no mailbox can be read",
                "set one of them (docs/running-real.md)",
            )
            return
        mailboxes = self.mailboxes or self._stored_mailboxes()
        if not mailboxes:
            self.add(
                "gmail delegation",
                "skip",
                "no mailbox to check yet",
                "add a mailbox, or run: python -m shared.cli doctor --mailbox you@your-fund.com",
            )
            return
        client = self._client_id(settings)
        who = f"client ID {client}" if client else "the service account's client ID (its Unique ID)"
        import google.auth.transport.requests

        for address in mailboxes:
            for scope in (SCOPE_READONLY, SCOPE_COMPOSE):
                short = scope.rsplit("/", 1)[-1]
                check = f"delegation {address} {short}"
                try:
                    credentials = wiring.delegated_credentials(address, scope)
                    with _quiet("shared.adapters.gmail.credentials"):
                        credentials.refresh(google.auth.transport.requests.Request())
                except AppError as exc:
                    self.add(
                        check,
                        "fail",
                        exc.message,
                        f"a Workspace super admin adds {scope} to {who} under {DELEGATION_PLACE}"
                        if "unauthorized_client" in exc.message
                        else "",
                    )
                    continue
                self.add(check, "ok", f"token minted for {scope}")

    def _stored_mailboxes(self) -> list[str]:
        accounts = wiring.store().list_email_accounts()
        return [a.address for a in accounts if not a.paused and not a.deleted]

    # -- Gmail notifications -------------------------------------------------------------------

    def check_watch(self, settings: Settings) -> None:
        topic = settings.gmail_watch_topic
        if not topic:
            poll = "every minute" if settings.mode != "cloud" else "every 5 minutes"
            self.add("watch topic", "skip", f"no CRM_GMAIL_WATCH_TOPIC: mail is polled {poll}")
            return
        parts = topic.split("/")
        if len(parts) != 4 or parts[0] != "projects" or parts[2] != "topics":
            self.add(
                "watch topic",
                "fail",
                "CRM_GMAIL_WATCH_TOPIC must be projects/<project>/topics/<name>",
            )
            return
        watch_project = self._watch_project(settings)
        if watch_project and watch_project != parts[1]:
            self.add(
                "watch topic project",
                "fail",
                f"the topic is in project {parts[1]} but the watch call is made by a service "
                f"account of project {watch_project}: Gmail requires the same project",
                f"create the topic in {watch_project}",
            )
        from shared.adapters.pubsub_pull import PubSubLookupError

        inspector = wiring.pubsub_inspector()
        try:
            inspector.topic(topic)
        except PubSubLookupError as exc:
            self.add("watch topic", "fail", _lookup_problem("topic", topic, exc.status))
            return
        self.add("watch topic", "ok", f"{topic} exists")
        try:
            policy = inspector.topic_policy(topic)
        except PubSubLookupError as exc:
            self.add(
                "watch topic publisher",
                "fail",
                "cannot read the topic's IAM policy "
                f"({_lookup_problem('topic', topic, exc.status)})",
                f"make sure {GMAIL_PUSH_MEMBER} has {PUBLISHER_ROLE} on it; {ORG_POLICY_NOTE}",
            )
        else:
            members = {
                member
                for binding in policy.get("bindings") or []
                if binding.get("role") == PUBLISHER_ROLE
                for member in binding.get("members") or []
            }
            if GMAIL_PUSH_MEMBER in members:
                self.add("watch topic publisher", "ok", "Gmail may publish to the topic")
            else:
                self.add(
                    "watch topic publisher",
                    "fail",
                    f"{GMAIL_PUSH_MEMBER} is not a publisher on the topic: Gmail's watch "
                    "calls will fail",
                    f"gcloud pubsub topics add-iam-policy-binding {topic} "
                    f"--member={GMAIL_PUSH_MEMBER} --role={PUBLISHER_ROLE}; {ORG_POLICY_NOTE}",
                )
        self._check_subscription(settings, inspector)

    def _check_subscription(self, settings: Settings, inspector: Any) -> None:
        from shared.adapters.pubsub_pull import PubSubLookupError

        subscription = settings.gmail_watch_subscription
        if settings.mode == "cloud":
            return  # the push subscription is the deployment's (infra/)
        if not subscription:
            self.add(
                "watch subscription",
                "warn",
                "no CRM_GMAIL_WATCH_SUBSCRIPTION: Gmail's notifications cannot reach this "
                "machine, so mail is polled every minute",
                f"gcloud pubsub subscriptions create <name> --topic={settings.gmail_watch_topic}",
            )
            return
        try:
            found = inspector.subscription(subscription)
        except PubSubLookupError as exc:
            self.add(
                "watch subscription",
                "fail",
                _lookup_problem("subscription", subscription, exc.status),
                "the runtime identity needs roles/pubsub.subscriber on the subscription",
            )
            return
        if found.get("topic") != settings.gmail_watch_topic:
            self.add(
                "watch subscription",
                "fail",
                f"{subscription} is on {found.get('topic')!s}, not on the watch topic",
                "create a subscription on CRM_GMAIL_WATCH_TOPIC",
            )
            return
        self.add("watch subscription", "ok", f"{subscription} pulls the watch topic")

    def _watch_project(self, settings: Settings) -> str:
        """The project of the identity making the watch call: the key's, else the keyless
        service account's (``name@<project>.iam.gserviceaccount.com``)."""
        info = _key_info(settings)
        if info is not None:
            return str(info.get("project_id", ""))
        account = settings.gmail_service_account
        suffix = ".iam.gserviceaccount.com"
        if account.endswith(suffix) and "@" in account:
            return account.split("@", 1)[1].removesuffix(suffix)
        return ""

    # -- stores ------------------------------------------------------------------------------

    def check_firestore(self, settings: Settings) -> None:
        from shared.config import StoreBackend

        if settings.store_backend is not StoreBackend.FIRESTORE:
            self.add("firestore", "skip", f"the store is {settings.store_backend}")
            return
        from shared.adapters.firestore.indexes import load_indexes
        from shared.adapters.firestore_admin import FirestoreAdminError

        admin = wiring.firestore_admin()
        try:
            admin.database()
        except FirestoreAdminError as exc:
            self.add(
                "firestore database",
                "fail",
                _lookup_problem("database", admin.database_path, exc.status),
                "create it (gcloud firestore databases create) or fix CRM_FIRESTORE_DATABASE",
            )
            return
        self.add("firestore database", "ok", f"{admin.database_path} exists")
        serving = {entry.index: entry.state for entry in admin.indexes()}
        missing = []
        building = []
        for index in load_indexes():
            state = serving.get(index)
            if state is None:
                missing.append(index.describe())
            elif state != "READY":
                building.append(f"{index.describe()} [{state}]")
        if missing or building:
            detail = "; ".join(
                part
                for part in (
                    f"missing: {', '.join(missing)}" if missing else "",
                    f"not ready: {', '.join(building)}" if building else "",
                )
                if part
            )
            self.add(
                "firestore indexes",
                "fail",
                detail,
                "deploy infra/firestore.indexes.json (make deploy, or gcloud firestore indexes "
                "composite create); building ones need minutes",
            )
            return
        self.add("firestore indexes", "ok", f"all {len(load_indexes())} declared indexes ready")

    # -- optional: SMTP and the narrator ----------------------------------------------------

    def check_smtp(self, settings: Settings) -> None:
        if not settings.smtp_host:
            self.add(
                "smtp", "skip", "no CRM_SMTP_HOST: the digest goes by Gmail only", optional=True
            )
            return
        try:
            sender = wiring.smtp_sender()
            if sender is not None:
                sender.check_login()
        except AppError as exc:
            self.add("smtp", "fail", exc.message, optional=True)
            return
        self.add(
            "smtp", "ok", f"logged in to {settings.smtp_host}:{settings.smtp_port}", optional=True
        )

    def check_narrator(self, settings: Settings) -> None:
        if not settings.narrator_url:
            self.add(
                "narrator", "skip", "no CRM_NARRATOR_URL: count-only paragraphs", optional=True
            )
            return
        narrator = wiring.narrator()
        if not narrator.configured:
            self.add(
                "narrator",
                "fail",
                "CRM_NARRATOR_URL needs an http(s) URL and CRM_NARRATOR_MODEL a model",
                optional=True,
            )
            return
        kinds: list[str] = []
        with _capture_field("shared.adapters.narrator", "kind", kinds):
            text = narrator.narrate("You answer health checks.", "Reply with one word: ready.")
        if text is None:
            reason = kinds[-1] if kinds else "no answer"
            self.add(
                "narrator", "fail", f"{narrator.url} gave no paragraph ({reason})", optional=True
            )
            return
        self.add("narrator", "ok", f"{narrator.url} answered", optional=True)


def _key_info(settings: Settings) -> dict[str, Any] | None:
    """The delegation key's public fields (client and project id), None when keyless or when
    the secret cannot be read (its own check says why)."""
    if not settings.gmail_key_secret:
        return None
    from shared.adapters.gmail.credentials import parse_key_secret

    name = settings.gmail_key_secret
    try:
        return parse_key_secret(wiring.secrets().get(name), secret=name)
    except Exception:
        return None


def _lookup_problem(what: str, name: str, status: int) -> str:
    if status == 404:
        return f"{what} {name} does not exist"
    if status == 403:
        return f"{what} {name}: permission denied (or it does not exist)"
    if status == 0:
        return f"{what} {name}: the API is not reachable"
    return f"{what} {name}: HTTP {status}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, AppError):
        return exc.message
    return type(exc).__name__


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    """The doctor reports the failure itself; the adapter's own ERROR line would say it twice."""
    logger = logging.getLogger(name)
    previous = logger.disabled
    logger.disabled = True
    try:
        yield
    finally:
        logger.disabled = previous


@contextmanager
def _capture_field(name: str, field: str, into: list[str]) -> Iterator[None]:
    """Collect one structured field of the records a logger emits (the narrator's failure kind),
    without letting them reach the console."""

    class _Collector(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            fields = getattr(record, "fields", None)
            if isinstance(fields, dict) and field in fields:
                into.append(str(fields[field]))

    logger = logging.getLogger(name)
    handler = _Collector()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


LABELS: dict[Status, str] = {"ok": "ok  ", "fail": "FAIL", "skip": "skip", "warn": "warn"}


def render(results: Sequence[CheckResult]) -> str:
    """The report, one line per check (and a ``fix:`` line under a problem), redacted."""
    from shared.logging import redact

    lines = []
    for result in results:
        name = f"{result.name} (optional)" if result.optional else result.name
        label = LABELS[result.status]
        if result.status == "fail" and result.optional:
            label = "fail"
        lines.append(f"[{label}] {name}: {result.detail}")
        if result.fix and result.status in ("fail", "warn", "skip"):
            lines.append(f"       fix: {result.fix}")
    failed = [r for r in results if r.failed_required]
    if failed:
        lines.append(f"{len(failed)} required check(s) failed: {', '.join(r.name for r in failed)}")
    else:
        lines.append("every required check passed")
    return "\n".join(redact(line) for line in lines)


def main(mailboxes: Sequence[str] = (), *, out: Callable[[str], None] = print) -> int:
    results = Doctor(mailboxes=mailboxes).run()
    out(render(results))
    return 1 if any(r.failed_required for r in results) else 0
