"""Structured JSON logging and secret redaction, read back from the real stdout stream."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from sandbox.secret_manager import SecretManagerStandIn
from shared.adapters.secrets import SecretManagerSecrets
from shared.errors import ConfigurationError
from shared.logging import (
    REDACTED,
    StdoutJsonHandler,
    configure_logging,
    log_event,
    register_secret,
)

ReadLines = Callable[[], list[dict[str, Any]]]

# Shapes only; none of these is a real credential.
A_JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImFiYyJ9"
    ".eyJzdWIiOiIxMjMiLCJhdWQiOiJodHRwczovL2V4YW1wbGUuY29tIn0"
    ".c2lnbmF0dXJlLWJ5dGVzLWdvLWhlcmU"
)
A_PEM_KEY = (
    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nbm90IGEgcmVhbCBrZXk=\n"
    "-----END PRIVATE KEY-----\n"
)


def a_secret() -> str:
    return f"s3cr3t-{uuid4().hex}"


@pytest.fixture
def logger() -> logging.Logger:
    return logging.getLogger(f"test.logging.{uuid4().hex[:8]}")


@pytest.fixture
def read_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[ReadLines]:
    """Install the JSON handler at DEBUG; yields a reader of the JSON lines printed since."""
    root = logging.getLogger()
    saved_level = root.level
    handler = configure_logging("DEBUG")
    capsys.readouterr()

    def read() -> list[dict[str, Any]]:
        out = capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    yield read
    root.removeHandler(handler)
    root.setLevel(saved_level)


class TestJsonShape:
    def test_record_is_one_json_line_with_cloud_logging_keys(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        logger.info("synced %d messages of %s", 12, "ops@fund.example")

        (line,) = read_lines()
        assert line["severity"] == "INFO"
        assert line["message"] == "synced 12 messages of ops@fund.example"
        assert line["logger"] == logger.name
        assert line["time"].endswith("Z")
        assert datetime.fromisoformat(line["time"]).utcoffset() == timedelta(0)

    @pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
    def test_severity_is_the_level_name(
        self, read_lines: ReadLines, logger: logging.Logger, level: str
    ) -> None:
        logger.log(logging.getLevelName(level), "something happened")

        (line,) = read_lines()
        assert line["severity"] == level

    def test_custom_level_rounds_down_to_a_standard_severity(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        logger.log(35, "between warning and error")

        (line,) = read_lines()
        assert line["severity"] == "WARNING"

    def test_fields_from_extra_are_top_level_keys(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        logger.info("sync done", extra={"fields": {"mailbox": "ops@fund.example", "count": 3}})

        (line,) = read_lines()
        assert line["mailbox"] == "ops@fund.example"
        assert line["count"] == 3

    def test_log_event_writes_message_verbatim_and_fields(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        log_event(
            logger,
            "WARNING",
            "subject had 100% and %s in it",
            function="gmail_push",
            event="sync_requested",
            mailbox="ops@fund.example",
        )

        (line,) = read_lines()
        assert line["severity"] == "WARNING"
        assert line["message"] == "subject had 100% and %s in it"
        assert (line["function"], line["event"], line["mailbox"]) == (
            "gmail_push",
            "sync_requested",
            "ops@fund.example",
        )

    def test_field_named_like_an_envelope_key_does_not_replace_it(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        log_event(logger, logging.INFO, "the real message", severity="x", message="y")

        (line,) = read_lines()
        assert (line["severity"], line["message"]) == ("INFO", "the real message")
        assert (line["field.severity"], line["field.message"]) == ("x", "y")

    def test_exception_is_rendered_as_stack_trace(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        try:
            raise ValueError("history id went backwards")
        except ValueError:
            logger.exception("sync failed")

        (line,) = read_lines()
        assert line["severity"] == "ERROR"
        assert line["stack_trace"].startswith("Traceback (most recent call last)")
        assert "ValueError: history id went backwards" in line["stack_trace"]

    def test_log_event_passes_exc_info(self, read_lines: ReadLines, logger: logging.Logger) -> None:
        try:
            raise KeyError("mailbox")
        except KeyError:
            log_event(logger, "ERROR", "lookup failed", exc_info=True, mailbox="m")

        (line,) = read_lines()
        assert "KeyError: 'mailbox'" in line["stack_trace"]

    def test_non_json_field_values_are_written_as_text(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        when = datetime(2025, 1, 2, 3, 4, 5)

        log_event(logger, "INFO", "at", when=when, ids={"b", "a"}, nested={"k": (1, 2)})

        (line,) = read_lines()
        assert line["when"] == "2025-01-02 03:04:05"
        assert sorted(line["ids"]) == ["a", "b"]
        assert line["nested"] == {"k": [1, 2]}


class TestConfigureLogging:
    def test_calling_twice_installs_one_handler_and_prints_once(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        configure_logging("DEBUG")

        logger.info("once")

        handlers = [h for h in logging.getLogger().handlers if isinstance(h, StdoutJsonHandler)]
        assert len(handlers) == 1
        assert [line["message"] for line in read_lines()] == ["once"]

    def test_second_call_changes_the_level(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        configure_logging("warning")

        logger.info("dropped")
        logger.warning("kept")

        assert [line["message"] for line in read_lines()] == ["kept"]

    def test_unknown_level_raises_configuration_error_naming_the_setting(self) -> None:
        with pytest.raises(ConfigurationError, match="CRM_LOG_LEVEL"):
            configure_logging("LOUD")


class TestRedaction:
    def test_registered_secret_in_message_is_redacted(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        secret = a_secret()
        register_secret(secret)

        logger.info(f"password is {secret}!")

        (line,) = read_lines()
        assert line["message"] == f"password is {REDACTED}!"

    def test_registered_secret_in_args_is_redacted(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        secret = a_secret()
        register_secret(secret)

        logger.info("config: %s / %r", secret, {"smtp": secret})

        (line,) = read_lines()
        assert secret not in json.dumps(line)
        assert line["message"] == f"config: {REDACTED} / {{'smtp': '{REDACTED}'}}"

    def test_registered_secret_in_repr_escaped_form_is_redacted(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        secret = "it's-" + a_secret() + "\\x"
        register_secret(secret)

        logger.info("%r", [secret])

        (line,) = read_lines()
        assert line["message"] == f'["{REDACTED}"]'

    def test_registered_secret_in_nested_fields_is_redacted(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        secret = a_secret()
        register_secret(secret)

        class Holder:
            def __str__(self) -> str:
                return f"Holder({secret})"

        log_event(
            logger,
            "INFO",
            "fields",
            smtp={"password": secret, "hosts": [f"user:{secret}@smtp"]},
            obj=Holder(),
            keyed={secret: "as a key"},
        )

        (line,) = read_lines()
        assert secret not in json.dumps(line)
        assert line["smtp"] == {"password": REDACTED, "hosts": [f"user:{REDACTED}@smtp"]}
        assert line["obj"] == f"Holder({REDACTED})"
        assert line["keyed"] == {REDACTED: "as a key"}

    def test_registered_secret_in_stack_trace_is_redacted(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        secret = a_secret()
        register_secret(secret)

        try:
            raise RuntimeError(f"SMTP login failed for password {secret}")
        except RuntimeError:
            logger.exception("digest send failed")

        (line,) = read_lines()
        assert secret not in line["stack_trace"]
        assert f"RuntimeError: SMTP login failed for password {REDACTED}" in line["stack_trace"]

    def test_stack_trace_already_formatted_by_another_handler_is_still_redacted(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        secret = a_secret()
        register_secret(secret)
        record = logger.makeRecord(logger.name, logging.ERROR, __file__, 1, "boom", (), None)
        record.exc_text = f"Traceback ...\nValueError: {secret}"

        logger.handle(record)

        (line,) = read_lines()
        assert line["stack_trace"] == f"Traceback ...\nValueError: {REDACTED}"

    def test_values_shorter_than_four_characters_are_not_registered(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        register_secret("abc")

        logger.info("abc and abcd")

        (line,) = read_lines()
        assert line["message"] == "abc and abcd"

    def test_jwt_is_redacted(self, read_lines: ReadLines, logger: logging.Logger) -> None:
        logger.info("push token %s rejected", A_JWT, extra={"fields": {"token": A_JWT}})

        (line,) = read_lines()
        assert line["message"] == f"push token {REDACTED} rejected"
        assert line["token"] == REDACTED

    def test_bearer_header_is_redacted(self, read_lines: ReadLines, logger: logging.Logger) -> None:
        log_event(
            logger,
            "INFO",
            "headers: Authorization: Bearer opaque-token_value.123/abc==",
            headers={"Authorization": "bearer AnotherOpaqueToken"},
        )

        (line,) = read_lines()
        assert line["message"] == f"headers: Authorization: Bearer {REDACTED}"
        assert line["headers"] == {"Authorization": f"bearer {REDACTED}"}

    def test_oauth_access_token_is_redacted(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        logger.info("token ya29.a0AfB_byC-example.Token_value refreshed")

        (line,) = read_lines()
        assert line["message"] == f"token {REDACTED} refreshed"

    def test_pem_private_key_block_is_redacted(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        logger.info("key file: %s end", A_PEM_KEY)
        logger.info("truncated: %s", A_PEM_KEY[:60])

        whole, truncated = read_lines()
        assert whole["message"] == f"key file: {REDACTED}\n end"
        assert truncated["message"] == f"truncated: {REDACTED}"

    def test_word_after_bearer_is_hidden_even_in_prose(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        logger.info("the bearer of news")

        (line,) = read_lines()
        assert line["message"] == f"the bearer {REDACTED} news"

    def test_dotted_names_are_not_mistaken_for_tokens(
        self, read_lines: ReadLines, logger: logging.Logger
    ) -> None:
        text = "shared.adapters.secrets at gmail.googleapis.com v1.2.3 (Firestore emulator)"

        logger.info(text)

        (line,) = read_lines()
        assert line["message"] == text


class TestSecretFromSecretManagerNeverLogged:
    def test_value_read_through_secret_manager_is_absent_from_stdout(
        self,
        read_lines: ReadLines,
        logger: logging.Logger,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        value = a_secret()
        with SecretManagerStandIn({"smtp-password": value}, project="crm-test") as stand_in:
            secret = SecretManagerSecrets("crm-test", endpoint=stand_in.endpoint).get(
                "smtp-password"
            )
        assert secret == value

        logger.warning("smtp password is %s", secret, extra={"fields": {"pw": secret}})
        log_event(logger, "INFO", f"inline {secret}", config={"smtp": [secret]})
        try:
            raise ConnectionError(f"login rejected for {secret}")
        except ConnectionError:
            logger.exception("send failed")

        out = capsys.readouterr().out
        ours = [json.loads(line) for line in out.splitlines()]
        ours = [line for line in ours if line["logger"] == logger.name]
        assert [line["severity"] for line in ours] == ["WARNING", "INFO", "ERROR"]
        assert value not in out
        assert REDACTED in ours[0]["pw"]
        assert REDACTED in ours[2]["stack_trace"]
