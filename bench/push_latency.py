"""Partial-sync latency through Gmail push on the local stack.

What it measures: on ``embedded.stack.local_stack`` (SQLite in a temporary directory, the Gmail
sandbox with no rate limit, the ticker not started), after the scenario's CRM and mail are
seeded, the initial sync has run (``fire_now("sync_poll")``, queue idle) and the watch is set
(``fire_now("watch_renew")``, its first notification handled), ``--messages`` (default 50)
messages from a known contact are added one at a time. For each, the time from
``GmailSandbox.add_message`` to the email being in the store
(``wiring.store().get_email(email_id_for(message_id))``, polled every 2 ms from this thread).
The stack logs at WARNING (``--log-level``) so the output stays readable; at INFO every request
is a JSON line on stdout. The next message is added only once the previous one's pushes and
queue work are done, so each measurement is the path alone:

    add_message -> sandbox push (HTTP POST, OIDC token) -> gmail_push (token verified) ->
    local queue -> sync_mailbox (HTTP, token verified) -> lease -> history.list ->
    metadata get -> match -> raw get -> store

Output: human lines (median, p95, min, max; also the time until the whole run was done:
sighting, link and proposal written, queue idle), then exactly
``RESULT push_latency_p50_ms=<x> push_latency_p95_ms=<x>`` as the last stdout line.

    PYTHONPATH=. .venv/bin/python bench/push_latency.py [--messages 50]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from embedded.stack import Stack, local_stack
from sandbox.scenario import TEAM, message, seed_crm, seed_mail
from shared import wiring
from shared.domain.models import email_id_for

POLL_S = 0.002
TIMEOUT_S = 30.0


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (p95 of 50 values is the 48th smallest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def settle(stack: Stack) -> None:
    """Wait until the sandbox has no push in flight and the local queue is idle."""
    for _ in range(3):  # a push can enqueue work, whose sync can (in principle) push again
        if not stack.gmail.wait_for_pushes(TIMEOUT_S):
            raise RuntimeError("the sandbox's pushes did not settle")
        if not wiring.local_queue().wait_idle(TIMEOUT_S):
            raise RuntimeError("the local queue did not go idle")


ARRIVAL_GAP_S = 0.25


def measure(stack: Stack, count: int) -> tuple[list[float], list[float]]:
    store = wiring.store()
    stored_ms: list[float] = []
    done_ms: list[float] = []
    for index in range(count):
        mid, raw = message(
            sender="Zoe Zeta <zoe@zeta.vc>",
            to=[TEAM[0]],
            subject=f"Term sheet comments #{index}",
            body="Ada, our comments on the draft term sheet are below.\n" * 20,
            date=datetime.now(UTC),
            message_id=f"<push-bench-{index}-{time.time_ns()}@zeta.vc>",
        )
        email_id = email_id_for(mid)
        start = time.perf_counter()
        stack.gmail.add_message(TEAM[0], raw)
        while store.get_email(email_id) is None:
            if time.perf_counter() - start > TIMEOUT_S:
                raise RuntimeError(f"message {index} not stored after {TIMEOUT_S:.0f} s")
            time.sleep(POLL_S)
        stored_ms.append(1000 * (time.perf_counter() - start))
        settle(stack)
        done_ms.append(1000 * (time.perf_counter() - start))
        email = store.get_email(email_id)
        if email is None or not email.matched:
            raise RuntimeError(f"message {index} was stored but not matched")
        # Mail arrives spaced out, not 20 a second into one mailbox: without a gap each message
        # waits for the quota the previous one used (12 units of a 240 units/s pace), and the
        # figure would measure the quota, not the push path.
        time.sleep(ARRIVAL_GAP_S)
    return stored_ms, done_ms


def describe(label: str, values: list[float]) -> str:
    return (
        f"{label}: median {statistics.median(values):.1f} ms, "
        f"p95 {percentile(values, 0.95):.1f} ms (min {min(values):.1f}, max {max(values):.1f}) "
        f"over {len(values)} messages"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=50, help="messages added one at a time")
    parser.add_argument(
        "--log-level", default="WARNING", help="CRM_LOG_LEVEL of the stack (INFO: every request)"
    )
    args = parser.parse_args(argv)
    if args.messages < 1:
        parser.error("--messages must be at least 1")
    with (
        tempfile.TemporaryDirectory(prefix="bench-push-") as tmp,
        local_stack(
            sqlite_path=Path(tmp) / "crm.sqlite3",
            start_ticker=False,
            env={"CRM_LOG_LEVEL": args.log_level},
        ) as stack,
    ):
        store = wiring.store()
        scenario = seed_crm(store)
        seed_mail(stack.gmail, scenario)
        if stack.server.ticker.fire_now("sync_poll") >= 300:
            raise RuntimeError("sync_poll failed")
        settle(stack)
        if stack.server.ticker.fire_now("watch_renew") != 200:
            raise RuntimeError("watch_renew failed")
        settle(stack)  # the notification a new watch sends at once, and its sync
        account = store.get_email_account_by_address(TEAM[0])
        if account is None or account.sync.watch_expiration is None:
            raise RuntimeError("no watch set on the mailbox")
        before = len(stack.gmail.deliveries)
        stored_ms, done_ms = measure(stack, args.messages)
        deliveries = stack.gmail.deliveries[before:]
        bad = [d.statuses for d in deliveries if not d.statuses or d.statuses[-1] != 204]
        print(f"{len(deliveries)} pushes delivered for {args.messages} messages; not 204: {bad}")
        print(describe("add_message -> email in the store", stored_ms))
        print(describe("add_message -> run done (sighting, link, proposal; queue idle)", done_ms))
    p50, p95 = statistics.median(stored_ms), percentile(stored_ms, 0.95)
    print(f"RESULT push_latency_p50_ms={p50:.1f} push_latency_p95_ms={p95:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
