"""The README and the docs pages it owns name only what exists, and document every setting.

A new user copies commands and variables out of the README; a `make` target or a `CRM_*` name
that no longer exists (or never did) fails there, far from the change that broke it. So:

- every `make <target>` in a code span or block of the README and of the docs pages listed in
  ``OWN_PAGES`` is a target of the Makefile;
- every `CRM_*` name there is a setting of ``shared/config.py``, a name the code reads literally
  (``CRM_INFRA_ENDPOINT``), a secret's variable (``CRM_SECRET_<NAME>``) or the prefix of a group
  of settings (``CRM_SMTP_*``);
- every setting of ``shared/config.py`` is a row of the README's configuration table;
- a link into one of those pages reaches it, and its ``#anchor`` one of its headings (links to
  pages other branches write are not checked here).

``PENDING`` lists what the README already documents but other branches of issue 14 add (the
server's `make serve` and settings, the trust anchors' settings): tolerated while absent here.
Once those branches are merged the list should be emptied.
"""

from __future__ import annotations

import re
from pathlib import Path

from shared.adapters.secrets import ENV_PREFIX as SECRET_PREFIX
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
OWN_PAGES = tuple(
    ROOT / "docs" / name
    for name in (
        "capture.md",
        "matching.md",
        "drafts.md",
        "digest.md",
        "admin-api.md",
        "stores.md",
        "testing.md",
        "benchmarks.md",
    )
)
CODE_FOLDERS = ("shared", "embedded", "functions", "infra", "sandbox")

PENDING: frozenset[str] = frozenset()

FENCED = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"`([^`\n]+)`")
MAKE = re.compile(r"(?<![\w-])make ([a-z][a-z0-9-]*)")
CRM_NAME = re.compile(r"\bCRM_[A-Z0-9_]+")
TARGET = re.compile(r"^([a-z][a-z0-9-]*)\s*:(?!=)", re.MULTILINE)
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+ (.+)$", re.MULTILINE)


def code_of(markdown: str) -> str:
    """The text of every fenced block and inline code span: where commands are written."""
    blocks = FENCED.findall(markdown)
    prose = FENCED.sub("", markdown)
    return "\n".join([*blocks, *INLINE.findall(prose)])


def make_targets(makefile: str) -> set[str]:
    return set(TARGET.findall(makefile))


def setting_names() -> set[str]:
    return {f"CRM_{name.upper()}" for name in Settings.model_fields}


def literal_names() -> set[str]:
    """``CRM_*`` names the code spells out (read from the environment outside Settings)."""
    found: set[str] = set()
    for folder in CODE_FOLDERS:
        for path in (ROOT / folder).rglob("*.py"):
            found.update(CRM_NAME.findall(path.read_text(encoding="utf-8")))
    return found


def unknown_names(text: str, known: set[str]) -> list[str]:
    unknown = []
    for name in sorted(set(CRM_NAME.findall(text))):
        if name in known or name in PENDING:
            continue
        if name.startswith(SECRET_PREFIX) or name == SECRET_PREFIX.rstrip("_"):
            continue  # CRM_SECRET_<NAME>: a secret's variable, named by the secret
        if name.endswith("_") and any(setting.startswith(name) for setting in known):
            continue  # CRM_SMTP_*: a group of settings
        unknown.append(name)
    return unknown


def unknown_targets(text: str, targets: set[str]) -> list[str]:
    return sorted(
        {f"make {t}" for t in MAKE.findall(code_of(text))}
        - {f"make {t}" for t in targets}
        - PENDING
    )


def configuration_table(markdown: str) -> str:
    start = markdown.index("\n## Configuration\n")
    end = markdown.find("\n## ", start + 1)
    section = markdown[start : end if end != -1 else len(markdown)]
    return "\n".join(line for line in section.splitlines() if line.startswith("|"))


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def broken_links(page: Path, own: tuple[Path, ...]) -> list[str]:
    """Links from ``page`` into ``own`` pages (or to its own headings) that lead nowhere."""
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if "://" in target:
            continue
        path_part, _, fragment = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page.resolve()
        if linked not in {p.resolve() for p in own} and linked != page.resolve():
            continue
        if not linked.exists():
            broken.append(target)
            continue
        headings = {anchor(h) for h in HEADING.findall(linked.read_text(encoding="utf-8"))}
        if fragment and fragment not in headings:
            broken.append(target)
    return broken


def test_every_make_target_named_exists() -> None:
    targets = make_targets((ROOT / "Makefile").read_text(encoding="utf-8"))
    for page in (README, *OWN_PAGES):
        assert unknown_targets(page.read_text(encoding="utf-8"), targets) == [], page.name


def test_every_crm_name_is_a_setting_or_read_by_the_code() -> None:
    known = setting_names() | literal_names()
    for page in (README, *OWN_PAGES):
        assert unknown_names(page.read_text(encoding="utf-8"), known) == [], page.name


def test_every_setting_is_in_the_configuration_table() -> None:
    table = configuration_table(README.read_text(encoding="utf-8"))
    missing = sorted(setting_names() - set(CRM_NAME.findall(table)))
    assert missing == []


def test_links_into_these_pages_reach_a_heading() -> None:
    for page in (README, *OWN_PAGES):
        assert broken_links(page, OWN_PAGES) == [], page.name


def test_the_link_check_sees_a_wrong_anchor_and_a_missing_page(tmp_path: Path) -> None:
    target = tmp_path / "target.md"
    target.write_text("# Title\n\n## Hostile mail: a draft's headers\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "[ok](target.md#hostile-mail-a-drafts-headers) [bad](target.md#nope) "
        "[gone](gone.md) [other](other.md) [web](https://x.example/#y) [self](#title)\n# Title\n",
        encoding="utf-8",
    )
    assert broken_links(page, (target, tmp_path / "gone.md")) == ["target.md#nope", "gone.md"]


def test_the_checks_see_a_missing_target_setting_and_row() -> None:
    page = "Run `make serve-everything`, or\n\n```sh\nCRM_NOPE=1 make lint\n```\n"
    assert unknown_targets(page, {"lint"}) == ["make serve-everything"]
    assert unknown_names(page, {"CRM_LOG_LEVEL"}) == ["CRM_NOPE"]
    assert unknown_names("`CRM_SMTP_*`, `CRM_NOPE_*`", {"CRM_SMTP_HOST"}) == ["CRM_NOPE_"]
    assert unknown_names("`CRM_SECRET_GMAIL_DWD_KEY`, `CRM_SECRET_<NAME>`", set()) == []
    table = configuration_table("x\n## Configuration\n| `CRM_LOG_LEVEL` | |\n## Layout\n")
    assert CRM_NAME.findall(table) == ["CRM_LOG_LEVEL"]
    assert "setup" in make_targets("setup: $(VENV_STAMP)\nPY := x\n")
    assert "PY" not in make_targets("setup: $(VENV_STAMP)\nPY := x\n")
