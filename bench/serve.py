"""The one-machine server's start and stop: ``python -m embedded.server`` as an operator runs it.

What it measures, in fresh child processes started from a fresh folder (so ``var/`` is new):

- ``start_s``: from spawning ``python -m embedded.server`` in sandbox mode (the demo's fund,
  nothing extra) to the first ``200`` from ``GET /healthz``: interpreter start, imports, the
  sandbox's issuer and Gmail, the database's schema, waitress listening.
- ``stop_s``: from SIGTERM to the process's exit while a backfill is running: the sandbox
  mailbox holds ``--extra`` more investor messages (default 1,200: three list pages), and the
  signal is sent as soon as the first page is stored (its ``full sync progress`` log line), so
  the sync is inside the second page. This includes the run finishing its chunk, checkpointing
  and releasing its lease, the queue and ticker stopping, waitress closing, and the exit.
  The issue's bound is 20 s.

With ``--runs N`` each figure is the median of N runs. The last stdout line is exactly
``RESULT start_s=<x> stop_s=<x>`` (3 decimals).

    PYTHONPATH=. .venv/bin/python bench/serve.py [--runs 1] [--extra 1200]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Child:
    """The server process; its JSON log lines are read on a thread and matched by ``wait``."""

    def __init__(self, folder: Path, extra: int) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env.update(
            {
                "PYTHONPATH": str(ROOT),
                "CRM_MODE": "sandbox",
                "CRM_PORT": str(self.port),
                "CRM_SANDBOX_EXTRA_MESSAGES": str(extra),
            }
        )
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "embedded.server"],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self._seen = threading.Event()
        self._wanted = ""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if self._wanted and record.get("message") == self._wanted:
                self._seen.set()

    def wait_healthy(self, timeout: float = 120) -> float:
        while time.monotonic() - self.started < timeout:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited with {self.process.returncode}")
            try:
                response = requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                if response.status_code == 200:
                    return time.monotonic() - self.started
            except requests.ConnectionError:
                pass
            time.sleep(0.005)
        raise SystemExit("the server never answered /healthz")

    def wait_log(self, message: str, timeout: float = 300) -> None:
        self._wanted = message
        if not self._seen.wait(timeout):
            raise SystemExit(f"no {message!r} log line within {timeout} s")

    def stop(self) -> tuple[float, int]:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(60)
        return time.monotonic() - started, code


def one_start() -> float:
    with tempfile.TemporaryDirectory(prefix="crm-bench-serve-") as folder:
        child = Child(Path(folder), extra=0)
        try:
            return child.wait_healthy()
        finally:
            child.stop()


def one_stop(extra: int) -> float:
    with tempfile.TemporaryDirectory(prefix="crm-bench-serve-") as folder:
        child = Child(Path(folder), extra=extra)
        try:
            child.wait_healthy()
            child.wait_log("full sync progress")
            seconds, code = child.stop()
        finally:
            if child.process.poll() is None:
                child.process.kill()
        if code != 0:
            raise SystemExit(f"the server exited with {code} after SIGTERM")
        return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--extra", type=int, default=1200)
    args = parser.parse_args()
    starts = [one_start() for _ in range(args.runs)]
    stops = [one_stop(args.extra) for _ in range(args.runs)]
    start_s, stop_s = statistics.median(starts), statistics.median(stops)
    print(f"start to first /healthz (sandbox mode): {start_s:.3f} s over {args.runs} run(s)")
    print(f"SIGTERM to exit during a backfill of {args.extra} extra messages: {stop_s:.3f} s")
    print(f"RESULT start_s={start_s:.3f} stop_s={stop_s:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
