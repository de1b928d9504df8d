"""``python -m embedded.server`` as a child process, the way an operator starts it: its own
folder (so ``var/`` is the test's), ``CRM_*`` variables only, its JSON log lines collected."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServeProcess:
    def __init__(self, folder: Path, env: Mapping[str, str]) -> None:
        self.folder = folder
        self.port = int(env.get("CRM_PORT", "0")) or free_port()
        child_env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        child_env.update({"PYTHONPATH": str(ROOT), "CRM_PORT": str(self.port), **env})
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.lines: list[dict[str, Any]] = []
        self.stderr = ""
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "embedded.server"],
            cwd=folder,
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                record = {"message": line.rstrip(), "unparsed": True}
            with self._changed:
                self.lines.append(record)
                self._changed.notify_all()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        self.stderr = self.process.stderr.read()

    def wait_for_line(self, match: Callable[[dict[str, Any]], bool], timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines if match(line)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    raise AssertionError(
                        f"no such log line; exit={self.process.poll()} stderr={self.stderr!r} "
                        f"last={self.lines[-5:]}"
                    )
                self._changed.wait(min(left, 0.2))

    def wait_healthy(self, timeout: float = 60) -> float:
        """Seconds from now until ``/healthz`` answers 200."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited {self.process.returncode}: {self.stderr}")
            try:
                if requests.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except requests.ConnectionError:
                pass
            time.sleep(0.02)
        raise AssertionError("the server never answered /healthz")

    def terminate(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM; (exit code, seconds until exit)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code, time.monotonic() - started

    def wait_exit(self, timeout: float = 60) -> int:
        code = self.process.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
