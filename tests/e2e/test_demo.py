"""``make demo`` tells the whole story without a failure a new user would stumble on.

The demo is run as a user runs it (``python -m embedded.demo``, its own loopback servers) and
its output is checked for the parts issue 14 asked it to show: a reply and a reply-all draft,
a narrated digest printed whole, why rejected mail stays in the panel, and no watch or sync
failure anywhere.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_output() -> str:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    result = subprocess.run(
        [sys.executable, "-m", "embedded.demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.rstrip().endswith("Demo finished.")
    return result.stdout + result.stderr


def _section(output: str, title: str) -> str:
    start = output.index(f"\n== {title}")
    end = output.find("\n== ", start + 1)
    return output[start : end if end != -1 else len(output)]


def test_no_watch_or_sync_failure_and_no_error(demo_output: str) -> None:
    assert "Traceback" not in demo_output
    for event in ("watch_failed", "sync_failed", "watch_error=unauthorized", '"ERROR"'):
        assert event not in demo_output
    for line in demo_output.splitlines():
        if "watch_started=" in line:
            assert "watch_started=True watch_error=" in line
            assert line.rstrip().endswith("watch_error=")
        if line.strip().startswith("mailbox ") and "state=" in line:
            assert "state=ok" in line
            assert "failed=0" in line


def test_a_reply_and_a_reply_all_draft_and_nothing_sent(demo_output: str) -> None:
    drafts = _section(demo_output, "Reply drafts")
    reply = re.search(
        r"reply +draft \S+ 'Re: Intro: Zeta Capital x Fund' to=\[(.*?)\] cc=\[\]", drafts
    )
    reply_all = re.search(
        r"reply_all draft \S+ 'Re: Intro: Zeta Capital x Fund' "
        r"to=\['zoe@zeta.vc'\] cc=\['ben@fund.example'\]",
        drafts,
    )
    assert reply is not None
    assert reply.group(1) == "'zoe@zeta.vc'"
    assert reply_all is not None
    assert drafts.count("In-Reply-To: <intro.q3@zeta.vc>") == 2
    assert "| Cc: ben@fund.example" in drafts
    assert drafts.count("> Hi Ada, great to meet.") == 2
    assert "Gmail sends while drafting: 0" in drafts


def test_the_digest_is_printed_whole_with_the_narrators_paragraphs(demo_output: str) -> None:
    digest = _section(demo_output, "The daily digest")
    body = [
        line.split("| ", 1)[1] if "| " in line else ""
        for line in digest.splitlines()
        if line.strip().startswith("|")
    ]
    text = "\n".join(body)
    assert text.startswith("Investor email digest ")
    for heading in ("By team member", "By investor", "Sync health"):
        assert heading in body
    # One narrated paragraph per team member, from the sandbox narrator (not the count-only text).
    narrated = [line for line in body if line.endswith("(Written by the sandbox narrator.)")]
    assert len(narrated) == 2
    assert any("'Intro: Zeta Capital x Fund'" in line for line in narrated)
    # The last section, to its end: nothing cut off.
    assert "All 2 mailboxes are syncing normally." in body
    assert "Zeta Capital Fund I (Zeta Capital): 3 emails" in text
    assert "Jo Smith (angel): 2 emails" in text


def test_the_panel_says_why_rejected_mail_stays_listed(demo_output: str) -> None:
    panel = _section(demo_output, "Email-activity panel")
    assert "Diligence questions" in panel
    explanation = " ".join(panel.split())
    assert "rejecting declines the CRM activity" in explanation
    assert "the email is still mail with an investor" in explanation


def test_an_investors_relationship_figures_are_shown_with_their_inputs(demo_output: str) -> None:
    section = _section(demo_output, "Relationship:")
    strength = re.search(r"strength (\d+)/100 =", section)
    assert strength is not None
    parts = re.findall(r"(recency|frequency|reciprocity) ([\d.]+)", section)
    assert [name for name, _ in parts] == ["recency", "frequency", "reciprocity"]
    # The strength is the rounded sum of the parts shown.
    assert int(strength.group(1)) == round(sum(float(value) for _, value in parts))
    assert "knows them: ada@fund.example (active)" in section
