"""The console: what it ships, and how fast its Communications page answers in a real browser.

What it measures:

- ``js_css_gzip_kb``: the built console's JavaScript, CSS and ``index.html``, each gzipped (level
  9), summed. Google's sign-in script is not ours and is excluded (the sandbox never loads it).
- ``first_results_ms``: in a fresh browser context (cold cache), from navigating to the
  Communications page to its first rows on screen, the sandbox sign-in clicked as soon as it
  shows (so the figure includes the token mint and ``GET /me``, not a person's reaction time).
- ``search_p50_ms`` / ``search_p95_ms``: 30 searches typed into the search box (words from the
  corpus's common, mid and rare bands in turn), each from its request's start to its rows on
  screen, as the page measures it (``data-rendered-ms``; the 100 ms debounce is outside).
- Baseline in the same run, ``api_p50_ms``: the same 30 searches as plain ``GET /activity``
  calls from Python with the same token: the floor the page adds its rendering to.

The server is the local stack (the sandbox's issuer, Gmail sandbox and local server) over a
SQLite store holding ``--corpus`` matched emails (default 100,000; bench/activity.py's corpus:
20 mailboxes, 500 investors). Populating it through the Store takes about 4 minutes at 100,000.
Chromium is Debian's (``make browser``).

Output: ``RESULT corpus=<n> js_css_gzip_kb=<x> first_results_ms=<x> search_p50_ms=<x>
search_p95_ms=<x> api_p50_ms=<x>``.

    PYTHONPATH=. .venv/bin/python bench/console.py [--corpus 100000]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from bench._support import team_address
from bench.activity import COMMON, make_corpus, populate_sqlite, seed_directory

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "console" / "dist"
SEARCHES = 30


def shipped_gzip_kb() -> float:
    if not (DIST / "index.html").is_file():
        subprocess.run(["npm", "run", "--silent", "build"], cwd=ROOT / "console", check=True)
    files = [DIST / "index.html", *sorted((DIST / "assets").glob("*"))]
    return sum(len(gzip.compress(f.read_bytes(), 9)) for f in files) / 1024


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", type=int, default=100_000)
    args = parser.parse_args(argv)

    from embedded.stack import local_stack
    from shared.adapters.sqlite import SqliteStore
    from tests.support.browser import CONSOLE_PATH, launch_chromium

    kb = shipped_gzip_kb()
    print(f"shipped: {kb:.1f} KB gzipped")
    corpus = make_corpus(args.corpus)
    admin = team_address(0)
    words = [
        w for trio in zip(COMMON * 6, corpus.mid[:30], corpus.rare[:30], strict=False) for w in trio
    ][:SEARCHES]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "crm.sqlite3"
        store = SqliteStore(path)
        print(f"populating {args.corpus} matched emails", flush=True)
        seed_directory(store, corpus)
        populate_sqlite(store, corpus)
        store.close()
        with local_stack(
            sqlite_path=path, bootstrap_admin=admin, start_ticker=False, env={"CRM_MODE": "sandbox"}
        ) as stack:
            token = stack.person_token(admin)
            api_ms = []
            for word in words:
                started = time.perf_counter()
                reply = requests.get(
                    f"{stack.base_url}/admin_api/activity",
                    params={"q": word, "limit": "25"},
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=60,
                )
                reply.raise_for_status()
                api_ms.append((time.perf_counter() - started) * 1000)
            with launch_chromium() as browser:
                context = browser.new_context()
                page = context.new_page()
                started = time.perf_counter()
                page.goto(f"{stack.base_url}{CONSOLE_PATH}#/communications")
                page.get_by_role("button", name="Team 0").click()
                page.locator("[data-testid=activity-results] tbody tr").first.wait_for()
                first_ms = (time.perf_counter() - started) * 1000
                table = page.get_by_test_id("activity-results")
                search_ms = []
                for word in words:
                    page.get_by_label("Search").fill(word)
                    page.wait_for_function(
                        "w => document.querySelector('[data-testid=activity-results]')"
                        ".dataset.renderedQuery === w",
                        arg=word,
                        timeout=60_000,
                    )
                    search_ms.append(float(table.get_attribute("data-rendered-ms") or "nan"))
                context.close()
    print(
        f"RESULT corpus={args.corpus} js_css_gzip_kb={kb:.1f} first_results_ms={first_ms:.0f} "
        f"search_p50_ms={statistics.median(search_ms):.0f} "
        f"search_p95_ms={percentile(search_ms, 0.95):.0f} "
        f"api_p50_ms={statistics.median(api_ms):.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
