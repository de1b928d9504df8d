"""The panel's pure parts: the one tokenizer, the derived listing fields, and request parsing
(the router's one parse of ``GET /activity``'s query, against ``ActivityParams``)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import flask
import pytest
from werkzeug.test import EnvironBuilder

from shared.domain import search
from shared.domain.activity import ActivityParams, ActivityQuery
from shared.domain.activity_keys import activity_fields, activity_key
from shared.domain.models import Direction, Email, Mailbox
from shared.domain.paging import split_time_id_key
from shared.errors import BadRequestError
from shared.web import parse_query, status_for

T0 = datetime(2024, 6, 3, 9, 0, tzinfo=UTC)


class TestTokenizer:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("Investment UPDATE", ["investment", "update"]),
            ("Zoë Éloïse ÉTÉ", ["zoe", "eloise", "ete"]),  # accents stripped
            ("Straße", ["strasse"]),  # case folding, not lower()
            ("\ufb01nance \uff31\uff13", ["finance", "q3"]),  # NFKC: ligature, full-width
            ("jane.doe@acme.com", ["jane", "doe", "acme", "com"]),  # an address is words
            ("due-diligence_2024", ["due", "diligence", "2024"]),  # "_" separates too
            ("İstanbul", ["istanbul"]),  # dotted capital I: the dot is a combining mark
            ("  ", []),
        ],
    )
    def test_words(self, text: str, expected: list[str]) -> None:
        assert search.words(text) == expected

    def test_giant_words_are_cut_on_both_sides(self) -> None:
        giant = "a" * 100
        assert search.words(giant) == ["a" * search.MAX_WORD]
        assert search.query_words(giant) == ["a" * search.MAX_WORD]

    def test_prefixes_are_2_to_15_characters(self) -> None:
        got = search.prefixes(["supercalifragilistic", "q3", "a"])
        assert "su" in got and "supercalifragil" in got  # 2 and 15 characters
        assert "supercalifragili" not in got  # 16
        assert "q3" in got
        assert "s" not in got and "a" not in got  # one character: never indexed
        assert got == sorted(set(got))

    def test_query_words_drop_one_letter_and_implied_words(self) -> None:
        assert search.query_words("a Inv investment B été") == ["ete", "investment"]
        assert search.query_words("x y ?") == []

    def test_matches_needs_every_word_as_a_prefix(self) -> None:
        have = search.words("Investment update for Q3")
        assert search.matches(["inv", "q3"], have)
        assert not search.matches(["inv", "q4"], have)
        assert not search.matches(["vestment"], have)  # a prefix, not a substring
        assert search.matches([], have)


def email(**fields: object) -> Email:
    base: dict[str, object] = {
        "id": "e1",
        "subject": "Intro",
        "sender": Mailbox(name="Zoë", address="zoe@zeta.vc"),
        "date": T0,
        "matched": True,
        "investor_ids": ["i1", "i2"],
        "live_account_ids": ["a1"],
    }
    return Email.model_validate({**base, **fields})


class TestActivityFields:
    def test_listed_mail_has_a_token_per_filter_combination(self) -> None:
        fields = activity_fields(email(), {"ada@fund.example"})
        assert fields.listed
        assert fields.direction is Direction.INBOUND
        assert set(fields.facets) == {
            f"{i}|{a}|{d}" for i in ("*", "i1", "i2") for a in ("*", "a1") for d in ("*", "inbound")
        }
        assert fields.words == ("intro", "zoe", "zeta", "vc")

    def test_direction_is_outbound_from_a_team_address_or_alias(self) -> None:
        sent = email(sender=Mailbox(address="deals@fund.example"))
        assert activity_fields(sent, {"deals@fund.example"}).direction is Direction.OUTBOUND
        assert activity_fields(sent, set()).direction is Direction.INBOUND
        assert activity_fields(email(sender=None), set()).direction is Direction.INBOUND

    @pytest.mark.parametrize(
        "change",
        [{"matched": False, "investor_ids": []}, {"live_account_ids": []}],
        ids=["unmatched", "no live sighting"],
    )
    def test_unlisted_mail_has_no_facets_and_no_words(self, change: dict[str, object]) -> None:
        fields = activity_fields(email(**change), set())
        assert not fields.listed
        assert (fields.facets, fields.words, fields.prefixes) == ((), (), [])

    def test_the_key_orders_by_date_then_id_and_falls_back_to_first_sight(self) -> None:
        assert activity_key(email()) == "2024-06-03T09:00:00.000000Z|e1"
        undated = email(date=None, first_seen_at=T0)
        assert activity_key(undated) == activity_key(email())
        assert split_time_id_key(activity_key(email())) == (T0, "e1")
        with pytest.raises(BadRequestError):
            split_time_id_key("2024-06-03|e1")


def token(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def parse_activity_query(args: dict[str, str]) -> ActivityQuery:
    """What ``GET /activity`` makes of these parameters: the router's one parse against
    ``ActivityParams``, then the query the stores run."""
    request = flask.Request(EnvironBuilder("/activity", query_string=args).get_environ())
    return parse_query(request, ActivityParams).query()


class TestParseActivityQuery:
    def test_defaults_and_every_parameter(self) -> None:
        assert parse_activity_query({}).limit == 50
        query = parse_activity_query(
            {
                "investor_id": "inv-1",
                "account_id": "a_1",
                "direction": "outbound",
                "q": " Été  plans ",
                "limit": "200",
                "page_token": token("2024-06-03T09:00:00.000000Z|e1"),
            }
        )
        assert (query.investor_id, query.account_id, query.direction) == (
            "inv-1",
            "a_1",
            Direction.OUTBOUND,
        )
        assert (query.q, query.words, query.limit) == ("Été  plans", ("ete", "plans"), 200)

    def test_empty_parameters_are_absent(self) -> None:
        query = parse_activity_query({"investor_id": "", "account_id": " ", "q": ""})
        assert (query.investor_id, query.direction, query.words, query.limit) == (
            None,
            None,
            (),
            50,
        )

    @pytest.mark.parametrize(
        ("args", "reason"),
        [
            ({"direction": "sideways"}, "direction"),
            ({"direction": " "}, "direction"),  # typed: an empty one is no direction
            ({"limit": ""}, "limit"),
            ({"limit": "0"}, "limit"),
            ({"limit": "201"}, "limit"),
            ({"limit": "ten"}, "limit"),
            ({"q": "a b ?"}, "q has no word"),
            ({"investor_id": "a/b"}, "investor_id"),
            ({"account_id": "x|*"}, "account_id"),
            ({"page_token": "%%"}, "page_token"),
            ({"page_token": token("not a key")}, "page_token"),
            ({"investor": "inv-1"}, "unknown query parameter"),
        ],
    )
    def test_bad_parameters_are_400_with_a_reason(self, args: dict[str, str], reason: str) -> None:
        with pytest.raises(BadRequestError) as raised:
            parse_activity_query(args)
        assert reason in raised.value.message
        assert status_for(raised.value) == 400


def test_the_route_declares_the_one_schema_and_the_service_parses_nothing() -> None:
    """GET /activity is parsed once, by the router, against the domain's ActivityParams; the
    service has no parameter schema of its own to parse the query string again."""
    from functions.admin_api import api
    from shared.services import activity

    (route,) = [r for r in api.routes if (r.method, r.path) == ("GET", "/activity")]
    assert route.query is ActivityParams
    assert not hasattr(activity, "parse_activity_query")
    assert not hasattr(activity, "PARAMETERS")
