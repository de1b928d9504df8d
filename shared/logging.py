"""Structured logging for Cloud Logging, with secrets redacted before anything is written.

Cloud Functions gen2 (Cloud Run underneath) turns each JSON object printed on stdout into a
``jsonPayload`` entry and promotes ``severity``, ``message`` and ``time``; a plain-text line
would arrive with no severity at all. So every record becomes one JSON line here, built from the
standard library only (no google-cloud-logging client: it costs cold-start time and a network
path for what stdout already does).

Redaction is a filter on the handler, so it runs once per record before formatting and covers
the message (after ``%`` arguments are merged in), the structured fields (recursively) and the
stack trace. It knows two kinds of secret:

- values registered at runtime with :func:`register_secret` (the secrets adapters register
  every value they read), and
- things shaped like credentials whatever their origin: ``Bearer`` tokens, JWTs, ``ya29.``
  OAuth access tokens and PEM private-key blocks.

Import cost is deliberately tiny: this module is imported by every entry point.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.errors import ConfigurationError

REDACTED = "[REDACTED]"

# Shorter values are refused: redacting every "abc" in every log line would destroy the logs
# while protecting nothing worth protecting.
MIN_SECRET_LENGTH = 4

# Keys the formatter owns; a structured field with one of these names is written under
# ``field.<name>`` instead of silently replacing the envelope Cloud Logging reads.
_RESERVED_KEYS = frozenset({"severity", "message", "time", "logger", "stack_trace"})

_SEVERITIES = ((50, "CRITICAL"), (40, "ERROR"), (30, "WARNING"), (20, "INFO"), (10, "DEBUG"))

# ``Bearer`` is matched case-insensitively (HTTP auth schemes are), so the word after "bearer"
# in prose is hidden too: over-redaction is the safe direction.
# A JWT's first segment is base64url of ``{"`` and so always starts with ``eyJ``. Requiring it
# keeps dotted names (``shared.adapters.secrets``, host names, versions) out of the net; the
# signature may be empty (``alg: none``).
_SHAPE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY-----(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY-----|.*)",
            re.DOTALL,
        ),
        REDACTED,
    ),
    (re.compile(r"\b(Bearer)\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE), rf"\1 {REDACTED}"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"\bya29\.[A-Za-z0-9_\-.]+"), REDACTED),
)

_registry_lock = threading.Lock()
_registered: set[str] = set()
_registered_pattern: re.Pattern[str] | None = None


def register_secret(value: str | None) -> None:
    """Make ``value`` unloggable from now on (values under four characters are ignored).

    Also registers the ``repr`` escaping of the value, because ``logger.info("%r", obj)`` shows
    a value containing quotes or backslashes in that form rather than verbatim.
    """
    global _registered_pattern
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    variants = {value, repr(value)[1:-1]}
    with _registry_lock:
        if variants <= _registered:
            return
        _registered.update(variants)
        # Longest first, so a secret that contains another is removed whole.
        ordered = sorted(_registered, key=len, reverse=True)
        _registered_pattern = re.compile("|".join(re.escape(item) for item in ordered))


def redact(text: str) -> str:
    """``text`` with every registered secret and every credential-shaped token replaced."""
    pattern = _registered_pattern  # read once: registration may swap it concurrently
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for shape, replacement in _SHAPE_PATTERNS:
        text = shape.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """Redact inside JSON-like data; anything else is turned into redacted text.

    Converting unknown objects with ``str`` here (rather than leaving it to ``json.dumps``'s
    ``default``) is what guarantees their text passes through :func:`redact` too.
    """
    if isinstance(value, str):
        return redact(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {redact(str(key)): redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_value(item) for item in value]
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """Rewrites a record in place so no handler after it can see a secret.

    The formatted message replaces ``msg`` and ``args`` (a secret may be in either); the stack
    trace is rendered now and stored, redacted, in ``exc_text``, which ``logging.Formatter``
    and :class:`JsonFormatter` use instead of formatting ``exc_info`` again.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record (or leak its args)
            message = f"{record.msg} (unformattable args: {record.args!r})"
        record.msg = redact(message)
        record.args = None
        fields = getattr(record, "fields", None)
        if fields is not None:
            record.fields = redact_value(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _severity(levelno: int) -> str:
    """Cloud Logging's severity for a level; custom levels round down to a standard one."""
    for threshold, name in _SEVERITIES:
        if levelno >= threshold:
            return name
    return "DEFAULT"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, in the shape Cloud Logging promotes.

    ``severity``, ``message``, ``time`` (RFC 3339, UTC) and ``logger`` first, then the record's
    structured ``fields`` at top level (so they are queryable as ``jsonPayload.mailbox``), then
    ``stack_trace`` when there is one. Error Reporting picks up ERROR entries whose
    ``stack_trace`` holds a Python traceback.
    """

    def format(self, record: logging.LogRecord) -> str:
        timestamp = datetime.fromtimestamp(record.created, tz=UTC)
        payload: dict[str, Any] = {
            "severity": _severity(record.levelno),
            "message": record.getMessage(),
            "time": timestamp.isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "logger": record.name,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                name = str(key)
                payload[f"field.{name}" if name in _RESERVED_KEYS else name] = value
        stack_trace = record.exc_text
        if record.exc_info and not stack_trace:
            stack_trace = self.formatException(record.exc_info)
        if record.stack_info:
            stack_trace = (
                f"{stack_trace}\n{record.stack_info}" if stack_trace else record.stack_info
            )
        if stack_trace:
            payload["stack_trace"] = stack_trace
        return json.dumps(payload, ensure_ascii=False, default=str)


class StdoutJsonHandler(logging.Handler):
    """Writes to whatever ``sys.stdout`` is at emit time.

    Binding the stream at construction (as ``StreamHandler`` does) would keep writing to a
    stream that pytest's ``capsys`` or a worker's redirection has since replaced.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = sys.stdout
            stream.write(line + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def configure_logging(level: str = "INFO") -> StdoutJsonHandler:
    """Route every logger through one JSON stdout handler on the root logger; idempotent.

    Called by each entry point at cold start. A second call only changes the level, so
    re-imports and tests never stack handlers (which would print every line twice). Returns
    the handler so a test can remove it again.
    """
    levelno = logging.getLevelName(level.strip().upper())
    if not isinstance(levelno, int):
        raise ConfigurationError(
            f"Unknown log level {level!r} (CRM_LOG_LEVEL): use DEBUG, INFO, WARNING, ERROR or "
            "CRITICAL",
            variable="CRM_LOG_LEVEL",
        )
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, StdoutJsonHandler)), None)
    if handler is None:
        handler = StdoutJsonHandler()
        root.addHandler(handler)
    root.setLevel(levelno)
    return handler


def log_event(
    logger: logging.Logger,
    level: int | str,
    message: str,
    /,
    *,
    exc_info: bool = False,
    **fields: Any,
) -> None:
    """Log ``message`` with structured ``fields`` (mailbox, function, event, ...).

    ``message`` is never %-formatted, so text from outside (a subject line, an error body)
    cannot break the record; put variable data in ``fields``. The first three parameters are
    positional-only so a field may be called ``message`` or ``level`` too.
    """
    levelno = level if isinstance(level, int) else logging.getLevelName(level.upper())
    if not isinstance(levelno, int):
        raise ValueError(f"unknown log level {level!r}")
    if logger.isEnabledFor(levelno):
        # stacklevel=2: the record's file and line are the caller's, not this helper's.
        logger.log(
            levelno, "%s", message, extra={"fields": fields}, exc_info=exc_info, stacklevel=2
        )
