"""The one tokenizer of the email-activity search: both stores index and query through it.

SQLite's FTS5 content and Firestore's ``search_words`` array are both made here, and a query is
cut into words here, so "what matches" cannot differ between the stores:

- text is normalised by NFKC (compatibility forms: "ﬁ" is "fi", full-width digits are digits),
  then case-folded ("Straße" is "strasse"), then stripped of accents (NFKD, combining marks
  dropped: "Zoë" is "zoe");
- a word is a run of letters and digits; everything else separates words, so an address is
  words too ("jane.doe@acme.com" is jane, doe, acme, com) and a query for "jane.doe@acme" or
  "acme.com" finds it, word by word;
- words are cut at :data:`MAX_WORD` characters (both sides, so both stores agree on the rare
  giant "word" of a pasted hash);
- a query word matches a text word it is a PREFIX of ("inv" matches "Investment"), and every
  query word must match;
- query words of one character are ignored: as prefixes they match nearly everything, and the
  Firestore index holds prefixes from :data:`MIN_PREFIX` characters. A query with no word of
  two or more characters is refused by the service (400), never silently "match all".

For Firestore each text word contributes its prefixes of :data:`MIN_PREFIX` to
:data:`MAX_PREFIX` characters (an ``array_contains`` on the prefix is then exact for query words
up to 15 characters; longer query words are looked up by their 15-character prefix and checked
in memory with :func:`matches`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

MIN_PREFIX = 2
MAX_PREFIX = 15
MAX_WORD = 64
# Letters and digits, not "_" (which \w includes): "a_b" is two words, as "a-b" is.
_WORD = re.compile(r"[^\W_]+")


def normalise(text: str) -> str:
    """NFKC, case-folded, accents stripped: the form both the index and the query see."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    decomposed = unicodedata.normalize("NFKD", folded)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFC", stripped)


def words(text: str) -> list[str]:
    """The words of ``text`` in order (repeats kept), each cut at :data:`MAX_WORD` characters."""
    return [word[:MAX_WORD] for word in _WORD.findall(normalise(text))]


def text_words(parts: Iterable[str]) -> list[str]:
    """The distinct words of several texts, in first-seen order."""
    return list(dict.fromkeys(word for part in parts for word in words(part)))


def prefixes(text_words: Iterable[str]) -> list[str]:
    """Every prefix of ``MIN_PREFIX``..``MAX_PREFIX`` characters of the words, sorted, unique:
    the Firestore token array (a one-letter word contributes nothing: no query can need it)."""
    found: set[str] = set()
    for word in text_words:
        for size in range(MIN_PREFIX, min(len(word), MAX_PREFIX) + 1):
            found.add(word[:size])
    return sorted(found)


def query_words(q: str) -> list[str]:
    """The words a query must match: normalised, one-character words dropped, and a word that
    is a prefix of another query word dropped too (it can only match where the longer does)."""
    candidates = [w for w in dict.fromkeys(words(q)) if len(w) >= MIN_PREFIX]
    kept = [w for w in candidates if not any(o != w and o.startswith(w) for o in candidates)]
    return sorted(kept)


def index_term(query_word: str) -> str:
    """The Firestore array entry a query word is looked up by (its first 15 characters)."""
    return query_word[:MAX_PREFIX]


def matches(wanted: Sequence[str], text_words: Iterable[str]) -> bool:
    """Whether every query word is a prefix of some word of the text."""
    have = list(text_words)
    return all(any(word.startswith(w) for word in have) for w in wanted)
