"""Page tokens and the listings' windows (pure): what a listing reads as a position."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from shared.domain.activity_keys import activity_page_key
from shared.domain.paging import (
    encode_page_token,
    matched_window_keys,
    proposal_window_keys,
    time_id_page_key,
)
from shared.errors import BadRequestError

T0 = datetime(2024, 6, 3, tzinfo=UTC)


class TestPageTokens:
    """A page token is the caller's input: only what a listing wrote is read as a position."""

    KEY = "2024-06-03T10:00:00.000000Z|e1"

    def test_a_token_a_listing_wrote_reads_back(self) -> None:
        token = encode_page_token(self.KEY)
        assert time_id_page_key(token) == self.KEY
        assert activity_page_key(token) == self.KEY

    @pytest.mark.parametrize(
        "forged",
        [
            "%%%not-base64%%%",
            "aGVsbG8=",  # "hello": base64, but no key of any listing
            base64.urlsafe_b64encode(b"0000|").decode(),  # the shape of nothing stored
            base64.urlsafe_b64encode(b"2024-06-03T10:00:00.000000Z|").decode(),  # no id
            base64.urlsafe_b64encode(b"2024-06-03T10:00:00.000000Z|a/b").decode(),  # not an id
            base64.urlsafe_b64encode(b"2024-06-03T10:00:00Z|e1").decode(),  # not fixed-width
            base64.urlsafe_b64encode(b'["zeta", "inv-1"]').decode(),  # another listing's token
            base64.urlsafe_b64encode(b"\xff\xfe").decode(),  # not UTF-8
            encode_page_token("2024-06-03T10:00:00.000000Z|e12").rstrip("="),  # padding cut
            "MjAyNC0wNi0wM1QxMDowMDowMC4wMDAwMDBafGUx" + "=" * 4,  # padding added
            "MjAyNC0wNi0wM1QxMDowMDowMC4w MDAwMDBafGUx",  # a space inside
            "A" * 5000,  # far longer than any key
        ],
    )
    def test_a_token_no_listing_wrote_is_a_bad_request(self, forged: str) -> None:
        for read in (
            time_id_page_key,
            activity_page_key,
            lambda t: proposal_window_keys(None, None, t),
            lambda t: matched_window_keys(T0, T0, t),
        ):
            with pytest.raises(BadRequestError):
                read(forged)
