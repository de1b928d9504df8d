"""The secrets adapters: env/file for one machine, Secret Manager through the real client.

The Secret Manager tests run the real ``SecretManagerServiceClient`` over its REST transport
against the loopback stand-in in ``sandbox/secret_manager.py``: no mocks, so URL building,
JSON decoding, error mapping and the CRC32C check are all exercised as in production.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import requests

from sandbox.secret_manager import SecretManagerStandIn
from shared.adapters.secrets import EnvFileSecrets, SecretManagerSecrets, crc32c, env_var_for
from shared.errors import ConfigurationError, RetryableError
from shared.logging import REDACTED, redact

pytestmark = pytest.mark.usefixtures("loopback_bypasses_proxies")

PROJECT = "crm-test"


def unique(prefix: str) -> str:
    """Names and values unique per test, so one stand-in serves every test without cleanup."""
    return f"{prefix}-{uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def secret_manager() -> Iterator[SecretManagerStandIn]:
    with SecretManagerStandIn(project=PROJECT) as stand_in:
        yield stand_in


class TestEnvFileSecrets:
    def test_environment_variable_wins_over_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        (tmp_path / "smtp-password").write_text("from-file\n")
        monkeypatch.setenv("CRM_SECRET_SMTP_PASSWORD", "from-environment")

        assert EnvFileSecrets(tmp_path).get("smtp-password") == "from-environment"

    def test_file_is_read_when_variable_is_unset_and_trailing_newline_stripped(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("CRM_SECRET_SMTP_PASSWORD", raising=False)
        (tmp_path / "smtp-password").write_text("from-file\n")

        assert EnvFileSecrets(tmp_path).get("smtp-password") == "from-file"

    def test_only_one_line_ending_is_stripped_from_a_file(self, tmp_path: Path) -> None:
        (tmp_path / "narrator-key").write_text("  padded key \n\r\n", newline="")

        assert EnvFileSecrets(tmp_path).get("narrator-key") == "  padded key \n"

    def test_empty_variable_counts_as_unset(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CRM_SECRET_SMTP_PASSWORD", "")
        (tmp_path / "smtp-password").write_text("from-file")

        assert EnvFileSecrets(tmp_path).get("smtp-password") == "from-file"

    def test_dots_and_dashes_in_name_become_underscores_in_variable(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CRM_SECRET_GMAIL_KEY_JSON", '{"type": "service_account"}')

        assert env_var_for("gmail.key-json") == "CRM_SECRET_GMAIL_KEY_JSON"
        assert EnvFileSecrets(None).get("gmail.key-json") == '{"type": "service_account"}'

    def test_missing_secret_raises_configuration_error_naming_variable_and_file(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("CRM_SECRET_SMTP_PASSWORD", raising=False)

        with pytest.raises(ConfigurationError) as raised:
            EnvFileSecrets(tmp_path).get("smtp-password")

        assert "CRM_SECRET_SMTP_PASSWORD" in raised.value.message
        assert str(tmp_path / "smtp-password") in raised.value.message

    def test_missing_secret_without_directory_says_no_directory_is_configured(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("CRM_SECRET_SMTP_PASSWORD", raising=False)

        with pytest.raises(ConfigurationError, match="CRM_SECRETS_DIR"):
            EnvFileSecrets(None).get("smtp-password")

    def test_get_optional_returns_none_when_missing(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.delenv("CRM_SECRET_NARRATOR_KEY", raising=False)

        assert EnvFileSecrets(tmp_path).get_optional("narrator-key") is None

    @pytest.mark.parametrize("name", ["../smtp-password", "a/b", ".hidden", ""])
    def test_name_that_could_leave_the_directory_is_refused(
        self, tmp_path: Path, name: str
    ) -> None:
        with pytest.raises(ConfigurationError, match="Invalid secret name"):
            EnvFileSecrets(tmp_path / "secrets").get(name)

    def test_value_is_cached_for_the_life_of_the_instance(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("CRM_SECRET_SMTP_PASSWORD", "first-value")
        secrets = EnvFileSecrets(None)
        secrets.get("smtp-password")
        monkeypatch.setenv("CRM_SECRET_SMTP_PASSWORD", "second-value")

        assert secrets.get("smtp-password") == "first-value"

    def test_value_read_is_registered_for_log_redaction(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        value = unique("env-secret")
        monkeypatch.setenv("CRM_SECRET_SMTP_PASSWORD", value)

        EnvFileSecrets(None).get("smtp-password")

        assert redact(f"password={value}") == f"password={REDACTED}"


class TestSecretManagerSecrets:
    def test_reads_latest_version_through_the_real_client(
        self, secret_manager: SecretManagerStandIn
    ) -> None:
        name, value = unique("smtp-password"), unique("value")
        secret_manager.add_version(name, value)

        secrets = SecretManagerSecrets(PROJECT, endpoint=secret_manager.endpoint)

        assert secrets.get(name) == value
        (request,) = secret_manager.requests_for(name)
        assert request.path == f"/v1/projects/{PROJECT}/secrets/{name}/versions/latest:access"

    def test_second_get_is_served_from_the_instance_cache(
        self, secret_manager: SecretManagerStandIn
    ) -> None:
        name, value = unique("smtp-password"), unique("value")
        secret_manager.add_version(name, value)
        secrets = SecretManagerSecrets(PROJECT, endpoint=secret_manager.endpoint)

        first, second = secrets.get(name), secrets.get(name)

        assert first == second == value
        assert len(secret_manager.requests_for(name)) == 1

    def test_newest_version_wins(self, secret_manager: SecretManagerStandIn) -> None:
        name = unique("narrator-key")
        secret_manager.add_version(name, "old-value")
        secret_manager.add_version(name, "rotated-value")

        secrets = SecretManagerSecrets(PROJECT, endpoint=secret_manager.endpoint)

        assert secrets.get(name) == "rotated-value"

    def test_checksum_mismatch_is_refused_without_revealing_the_value(
        self, secret_manager: SecretManagerStandIn
    ) -> None:
        name, value = unique("smtp-password"), unique("value")
        secret_manager.add_version(name, value)
        secret_manager.set_checksum(name, "wrong")
        secrets = SecretManagerSecrets(PROJECT, endpoint=secret_manager.endpoint)

        with pytest.raises(RetryableError, match="CRC32C") as raised:
            secrets.get(name)

        assert value not in str(raised.value)
        assert value not in str(raised.value.to_json())

    def test_absent_checksum_is_accepted(self, secret_manager: SecretManagerStandIn) -> None:
        name, value = unique("smtp-password"), unique("value")
        secret_manager.add_version(name, value)
        secret_manager.set_checksum(name, "absent")

        secrets = SecretManagerSecrets(PROJECT, endpoint=secret_manager.endpoint)

        assert secrets.get(name) == value

    def test_unknown_secret_raises_configuration_error_naming_it(
        self, secret_manager: SecretManagerStandIn
    ) -> None:
        name = unique("never-created")
        secrets = SecretManagerSecrets(PROJECT, endpoint=secret_manager.endpoint)

        with pytest.raises(ConfigurationError) as raised:
            secrets.get(name)

        assert f"projects/{PROJECT}/secrets/{name}/versions/latest" in raised.value.message
        assert raised.value.details["secret"] == name

    def test_get_optional_returns_none_for_unknown_secret(
        self, secret_manager: SecretManagerStandIn
    ) -> None:
        name = unique("never-created")
        secrets = SecretManagerSecrets(PROJECT, endpoint=secret_manager.endpoint)

        assert secrets.get_optional(name) is None
        assert secrets.get_optional(name) is None
        assert len(secret_manager.requests_for(name)) == 1

    def test_permission_denied_raises_configuration_error_that_says_so(
        self, secret_manager: SecretManagerStandIn
    ) -> None:
        name = unique("smtp-password")
        secret_manager.add_version(name, unique("value"))
        secrets = SecretManagerSecrets("someone-elses-project", endpoint=secret_manager.endpoint)

        with pytest.raises(ConfigurationError, match="Permission denied") as raised:
            secrets.get(name)

        assert "roles/secretmanager.secretAccessor" in raised.value.message

    def test_unreachable_endpoint_is_retryable(self) -> None:
        with SecretManagerStandIn(project=PROJECT) as stopped_soon:
            endpoint = stopped_soon.endpoint
        secrets = SecretManagerSecrets(PROJECT, endpoint=endpoint)

        with pytest.raises(RetryableError, match="unavailable"):
            secrets.get("smtp-password")

    @pytest.mark.parametrize("name", ["a/b", "../x", "dotted.name", ""])
    def test_name_outside_secret_managers_rules_is_refused_before_any_request(
        self, secret_manager: SecretManagerStandIn, name: str
    ) -> None:
        before = len(secret_manager.requests)
        secrets = SecretManagerSecrets(PROJECT, endpoint=secret_manager.endpoint)

        with pytest.raises(ConfigurationError, match="Invalid secret name"):
            secrets.get(name)
        assert len(secret_manager.requests) == before

    def test_missing_project_raises_configuration_error_naming_the_setting(self) -> None:
        with pytest.raises(ConfigurationError, match="CRM_GCP_PROJECT"):
            SecretManagerSecrets("")

    def test_value_read_is_registered_for_log_redaction(
        self, secret_manager: SecretManagerStandIn
    ) -> None:
        name, value = unique("smtp-password"), unique("value")
        secret_manager.add_version(name, value)

        SecretManagerSecrets(PROJECT, endpoint=secret_manager.endpoint).get(name)

        assert redact(f"[{value}]") == f"[{REDACTED}]"


class TestSecretManagerStandIn:
    """The stand-in answers in Google's JSON shapes, which the real client relies on."""

    def test_access_returns_base64_payload_and_int64_checksum_as_string(
        self, secret_manager: SecretManagerStandIn
    ) -> None:
        name = unique("shape")
        secret_manager.add_version(name, "hunter22")

        response = requests.get(
            f"{secret_manager.endpoint}/v1/projects/{PROJECT}/secrets/{name}/versions/latest:access",
            timeout=5,
        )

        assert response.status_code == 200
        assert response.json() == {
            "name": f"projects/{PROJECT}/secrets/{name}/versions/1",
            "payload": {
                "data": base64.b64encode(b"hunter22").decode(),
                "dataCrc32c": str(crc32c(b"hunter22")),
            },
        }

    @pytest.mark.parametrize(
        ("project", "status", "code"),
        [(PROJECT, 404, "NOT_FOUND"), ("other-project", 403, "PERMISSION_DENIED")],
    )
    def test_errors_use_googles_error_envelope(
        self, secret_manager: SecretManagerStandIn, project: str, status: int, code: str
    ) -> None:
        response = requests.get(
            f"{secret_manager.endpoint}/v1/projects/{project}/secrets/absent/versions/latest:access",
            timeout=5,
        )

        assert response.status_code == status
        error = response.json()["error"]
        assert (error["code"], error["status"]) == (status, code)
        assert error["message"]


class TestCrc32c:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            (b"", 0x00000000),
            (b"123456789", 0xE3069283),  # the CRC catalogue's check value for CRC-32C
            (bytes(32), 0x8A9136AA),  # RFC 3720 appendix B.4: 32 bytes of zeros
            (b"\xff" * 32, 0x62A8AB43),  # RFC 3720 appendix B.4: 32 bytes of 0xff
        ],
    )
    def test_known_answers(self, data: bytes, expected: int) -> None:
        assert crc32c(data) == expected
