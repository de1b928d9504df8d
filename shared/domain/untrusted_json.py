"""JSON from outside (a request body, a push message's data): parsed once, with its shape bounded.

Why here and not left to ``json.loads``: the standard parser recurses, so ``[`` x 100,000 raises
``RecursionError`` (not a ``ValueError``, so nothing upstream treats it as bad input), and it
accepts ``"\\ud800"``, a lone UTF-16 surrogate that is no character at all: it decodes into a
``str`` that cannot be encoded back to UTF-8, so it fails later, far from the input, in whatever
writes it (SQLite, a reply, a log line). Both are refused here, as the caller's mistake, before
any model or store sees the value. Nesting is bounded well below the interpreter's recursion
limit, so that nothing downstream (pydantic, ``json.dumps``) can recurse into trouble either.

Pure: no I/O. The web layer (``shared.web``) and the push-envelope decoder
(``shared.domain.pubsub``) call :func:`parse_untrusted_json`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from shared.errors import BadRequestError

# The deepest a request's JSON may nest (the API's own models need 5 or so).
MAX_JSON_DEPTH = 32
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_untrusted_json(data: bytes | str) -> Any:
    """The JSON value of ``data``; BadRequestError (with a reason) if it is not UTF-8 JSON, nests
    deeper than :data:`MAX_JSON_DEPTH`, or holds a lone surrogate in a string or a key."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise BadRequestError("the body is not UTF-8 text") from None
    else:
        text = data
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadRequestError(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels") from None
    except ValueError:
        raise BadRequestError("the body is not valid JSON") from None
    check_json_value(value)
    return value


def check_json_value(value: Any) -> None:
    """BadRequestError if a parsed JSON value nests too deep or holds a lone surrogate.

    Iterative (an explicit stack), so a deep value cannot make this check recurse.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item)
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > MAX_JSON_DEPTH:
            raise BadRequestError(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_text(key)
                stack.append((child, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in item)


def _check_text(text: str) -> None:
    if _SURROGATE.search(text):
        raise BadRequestError(
            "a JSON string holds a lone surrogate (\\ud800-\\udfff): not a character"
        )
