"""The process is stopping: one flag that long-running work reads to end early and cleanly.

On one machine, SIGTERM or Ctrl-C makes ``embedded.serve`` set it; a sync run then sees its
deadline as passed (``run_clock``), stops after the page it is on, keeps its checkpoint and
releases its lease, exactly as when it runs out of time on Cloud Functions. Nothing in the
cloud sets it (Cloud Functions ends an instance only between requests).
"""

from __future__ import annotations

import math
import threading
import time

_stopping = threading.Event()


def begin_stopping() -> None:
    _stopping.set()


def stopping() -> bool:
    return _stopping.is_set()


def reset() -> None:
    """Tests that stop a server in-process start the next one clean."""
    _stopping.clear()


def run_clock() -> float:
    """``time.monotonic`` until the process is stopping, then infinity: every deadline passed."""
    return math.inf if _stopping.is_set() else time.monotonic()
