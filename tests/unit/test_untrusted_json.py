"""JSON from outside: nesting bounded, lone surrogates refused, as the caller's 400 (pure)."""

from __future__ import annotations

import base64
import json

import pytest

from shared.domain.pubsub import decode_push_envelope
from shared.domain.untrusted_json import MAX_JSON_DEPTH, parse_untrusted_json
from shared.errors import BadRequestError


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


class TestParseUntrustedJson:
    def test_ordinary_json_and_surrogate_pairs_read_as_usual(self) -> None:
        value = parse_untrusted_json(b'{"name": "Zo\\u00eb \\ud83d\\ude00", "n": [1, {"a": null}]}')
        assert value == {"name": "Zoë 😀", "n": [1, {"a": None}]}
        assert parse_untrusted_json(nested(MAX_JSON_DEPTH)) is not None

    @pytest.mark.parametrize(
        "text",
        [
            "[" * 100_000,
            '{"a":' * 50_000 + "1" + "}" * 50_000,
            nested(MAX_JSON_DEPTH + 1),
            nested(900),  # parses, but deeper than any model
            '{"a": ' + nested(MAX_JSON_DEPTH) + "}",
        ],
    )
    def test_deep_nesting_is_a_bad_request(self, text: str) -> None:
        with pytest.raises(BadRequestError, match="nests deeper"):
            parse_untrusted_json(text)

    @pytest.mark.parametrize(
        "text", ['"\\ud800"', '{"\\udfff": 1}', '["ok", "a\\ud800b"]', '"\\ude00\\ud83d"']
    )
    def test_a_lone_surrogate_anywhere_is_a_bad_request(self, text: str) -> None:
        with pytest.raises(BadRequestError, match="surrogate"):
            parse_untrusted_json(text)

    @pytest.mark.parametrize("data", [b"\xff\xfe", b"{", b"", b"NaN-ish"])
    def test_what_is_not_utf8_json_is_a_bad_request(self, data: bytes) -> None:
        with pytest.raises(BadRequestError):
            parse_untrusted_json(data)


class TestPushEnvelopes:
    @staticmethod
    def envelope(data: str) -> dict[str, object]:
        return {"message": {"data": base64.b64encode(data.encode()).decode()}}

    @pytest.mark.parametrize(
        "data", ["[" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000, '{"job_id": "\\ud800"}']
    )
    def test_hostile_data_is_a_bad_envelope_not_a_crash(self, data: str) -> None:
        with pytest.raises(BadRequestError, match="push message data"):
            decode_push_envelope(self.envelope(data))

    def test_good_data_decodes(self) -> None:
        assert decode_push_envelope(self.envelope(json.dumps({"job_id": "j1"}))) == {"job_id": "j1"}
