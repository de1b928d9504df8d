"""Start and stop the local Firestore emulator (``sandbox/firestore_emulator.js``) from Python.

Used by the contract suite's session fixture, by the benchmarks and by the demo::

    with FirestoreEmulator() as emulator:
        client = emulator.client()          # a fresh project id: an empty database
        store = FirestoreStore(client)

The emulator is the npm package ``@firestore-emulator/server`` (pinned in package.json). It speaks
the real gRPC API, so the real ``google-cloud-firestore`` client runs against it, but it is not
production (ARCHITECTURE.md, "The sandbox", lists its gaps). Its state is kept per project id,
so a fresh project id per test isolates tests without any reset call (it has no HTTP reset
endpoint, unlike Google's emulator).

How the client finds it: ``google.cloud.firestore.Client`` reads ``FIRESTORE_EMULATOR_HOST`` when
it is *constructed* and then uses an insecure channel with ``Authorization: Bearer owner``
(FACTS.md, Firestore). :meth:`FirestoreEmulator.client` sets the variable just for that
construction, so it does not leak; code that builds its own clients (the wiring module) needs
:meth:`FirestoreEmulator.environ` in its environment instead.

Run ``python -m sandbox.firestore_emulator`` to keep one running for a manual session.
"""

from __future__ import annotations

import collections
import contextlib
import os
import queue
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from google.cloud import firestore

REPO_ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = REPO_ROOT / "sandbox" / "firestore_emulator.js"
EMULATOR_HOST_ENV = "FIRESTORE_EMULATOR_HOST"
_READY_PREFIX = "LISTENING "
_STDERR_LINES_KEPT = 200


class EmulatorError(RuntimeError):
    """The emulator could not be started (Node missing, package missing, timeout, crash)."""


def new_project_id(prefix: str = "test") -> str:
    """A project id nobody used yet in this emulator: an empty database.

    Real project ids are 6-30 characters of lower-case letters, digits and hyphens; keeping to
    that shape means the same ids would also be valid against Google's emulator.
    """
    return f"{prefix[:12]}-{uuid.uuid4().hex[:16]}"


class FirestoreEmulator:
    """The emulator as a child process on 127.0.0.1; a context manager.

    ``port=0`` lets the OS pick a free port, so parallel sessions never collide. The child runs in
    its own process group, which :meth:`stop` terminates as a whole; it also watches its stdin, so
    it exits by itself if this process dies without reaching :meth:`stop`.
    """

    def __init__(
        self,
        *,
        port: int = 0,
        node: str = "node",
        launcher: Path = LAUNCHER,
        startup_timeout: float = 30.0,
    ) -> None:
        self._port = port
        self._node = node
        self._launcher = launcher
        self._startup_timeout = startup_timeout
        self._process: subprocess.Popen[str] | None = None
        self._host: str | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES_KEPT)
        self._threads: list[threading.Thread] = []

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FirestoreEmulator:
        """Start the child and wait for its ``LISTENING`` line; raise EmulatorError on failure."""
        if self._process is not None:
            raise EmulatorError("the emulator is already started")
        argv = [self._node, str(self._launcher), str(self._port), "--watch-stdin"]
        try:
            process = subprocess.Popen(
                argv,
                cwd=REPO_ROOT,  # node resolves node_modules/ from the repository root
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
                start_new_session=True,  # own process group: stop() kills it as a whole
            )
        except FileNotFoundError as exc:
            raise EmulatorError(
                f"cannot run {self._node!r}: Node.js 20+ must be on PATH "
                "(and `npm ci` run in the repository for @firestore-emulator/server)"
            ) from exc
        self._process = process
        ready: queue.Queue[str] = queue.Queue()
        assert process.stdout is not None
        assert process.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump_stdout, args=(process.stdout, ready), daemon=True),
            threading.Thread(target=self._pump_stderr, args=(process.stderr,), daemon=True),
        ]
        for thread in self._threads:
            thread.start()

        deadline = time.monotonic() + self._startup_timeout
        while True:
            try:
                self._host = ready.get(timeout=0.05)
                return self
            except queue.Empty:
                pass
            if process.poll() is not None:
                self._join_pumps()
                self._process = None
                raise EmulatorError(
                    f"the Firestore emulator exited with status {process.returncode} "
                    f"before listening; stderr:\n{self.stderr_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise EmulatorError(
                    f"the Firestore emulator did not report {_READY_PREFIX.strip()} within "
                    f"{self._startup_timeout:.0f}s; stderr:\n{self.stderr_tail()}"
                )

    def stop(self) -> None:
        """Terminate the child's process group (SIGTERM, then SIGKILL after 5 s). Idempotent."""
        process, self._process = self._process, None
        self._host = None
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        self._join_pumps()

    def __enter__(self) -> FirestoreEmulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what callers use --------------------------------------------------------------------

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the value for ``FIRESTORE_EMULATOR_HOST``."""
        if self._host is None:
            raise EmulatorError("the emulator is not running")
        return self._host

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def environ(self) -> dict[str, str]:
        """Environment variables that point Google's Firestore client at this emulator."""
        return {EMULATOR_HOST_ENV: self.host}

    def client(self, project: str | None = None) -> firestore.Client:
        """A client of a fresh (or the given) project on this emulator.

        ``FIRESTORE_EMULATOR_HOST`` is set only while the client is constructed (that is when
        the library reads it), then restored.
        """
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import firestore

        previous = os.environ.get(EMULATOR_HOST_ENV)
        os.environ[EMULATOR_HOST_ENV] = self.host
        try:
            return firestore.Client(
                project=project or new_project_id(), credentials=AnonymousCredentials()
            )
        finally:
            if previous is None:
                os.environ.pop(EMULATOR_HOST_ENV, None)
            else:
                os.environ[EMULATOR_HOST_ENV] = previous

    def stderr_tail(self) -> str:
        """The last lines the emulator wrote to stderr (for error messages)."""
        return "".join(self._stderr) or "(nothing)"

    # -- internals ---------------------------------------------------------------------------

    def _pump_stdout(self, stream: IO[str], ready: queue.Queue[str]) -> None:
        # Keep reading after the ready line so the child never blocks on a full pipe.
        for line in stream:
            if line.startswith(_READY_PREFIX):
                ready.put(line[len(_READY_PREFIX) :].strip())

    def _pump_stderr(self, stream: IO[str]) -> None:
        for line in stream:
            self._stderr.append(line)

    def _join_pumps(self) -> None:
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads = []


def main() -> None:
    """Run one emulator until interrupted, printing the variable to export."""
    with FirestoreEmulator() as emulator:
        print(f"export {EMULATOR_HOST_ENV}={emulator.host}", flush=True)
        try:
            while emulator.running:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
