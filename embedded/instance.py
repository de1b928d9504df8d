"""What one machine's server checks before it serves: its settings, its folder, its lock, its mode.

Each refusal says why and what to do, because the person reading it is setting the machine up:

- ``cloud`` is Cloud Functions' mode; this server runs ``sandbox`` or ``real`` only, chosen
  explicitly (``make serve`` chooses sandbox), never guessed from what happens to be missing.
- sandbox mode answers loopback only: its sign-in mints a token for whoever asks.
- real mode off loopback needs an HTTPS public URL: ID tokens travel as bearer tokens, and
  Google sign-in accepts no plain-HTTP origin beyond localhost.
- a database remembers the mode that created it (a setting row): made-up sandbox mail and a
  fund's real mail never meet in one file.
- one server per database (an exclusive ``flock`` on ``<database>.lock``, released by the
  kernel however the process ends, so a crash leaves no stale lock).

The process's umask is 077 from here on, so everything it creates (``var/``, the database and
its ``-wal``, the lock, backups) is readable by its own user only; what existed is narrowed too.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from shared.config import QueueBackend, Settings, StoreBackend
from shared.ports import SettingsStore

MODE_SETTING = "instance_mode"
SANDBOX_DATABASE = Path("var/sandbox/crm.sqlite3")


class StartRefused(Exception):
    """The server will not start; the message says why and how to fix it."""


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_settings(settings: Settings) -> None:
    """Refuse a configuration this server must not run with (no file is touched yet)."""
    from sandbox.issuer import DEFAULT_ISSUER

    if settings.mode == "cloud":
        raise StartRefused(
            "CRM_MODE is 'cloud' (Cloud Functions' mode). The one-machine server runs in an "
            "explicit mode: CRM_MODE=sandbox to explore with made-up mail (`make serve`), or "
            "CRM_MODE=real for your fund's Gmail (`CRM_MODE=real make serve`)."
        )
    if settings.store_backend is not StoreBackend.SQLITE:
        raise StartRefused(
            "the one-machine server keeps its data in SQLite: unset CRM_STORE_BACKEND"
        )
    if settings.queue_backend is not QueueBackend.LOCAL:
        raise StartRefused("the one-machine server queues in process: unset CRM_QUEUE_BACKEND")
    if settings.mode == "sandbox" and not is_loopback(settings.host):
        raise StartRefused(
            f"sandbox mode serves loopback only (CRM_HOST={settings.host!r}): its sign-in gives "
            "a token to whoever asks. Use CRM_HOST=127.0.0.1, or CRM_MODE=real behind HTTPS."
        )
    if settings.mode == "real":
        if not is_loopback(settings.host) and not settings.public_url.startswith("https://"):
            raise StartRefused(
                f"real mode on a non-loopback address (CRM_HOST={settings.host!r}) needs "
                "CRM_PUBLIC_URL=https://... (a reverse proxy terminating TLS, docs/serve.md): "
                "ID tokens travel as bearer tokens and Google sign-in accepts no plain-HTTP "
                "origin beyond localhost."
            )
        if DEFAULT_ISSUER in settings.token_issuers or settings.google_auth_redirect:
            raise StartRefused(
                "real mode trusts no sandbox: remove the sandbox issuer from CRM_TOKEN_ISSUERS "
                "and unset CRM_GOOGLE_AUTH_REDIRECT."
            )


def database_path(settings: Settings) -> Path:
    """Sandbox mode has its own database (``var/sandbox/``) unless one is named explicitly."""
    if settings.mode == "sandbox" and "sqlite_path" not in settings.model_fields_set:
        return SANDBOX_DATABASE
    return settings.sqlite_path


def backup_dir(settings: Settings, database: Path) -> Path:
    return settings.backup_dir if settings.backup_dir is not None else database.parent / "backups"


@dataclass
class Instance:
    mode: str
    database: Path
    backups: Path
    _lock: IO[str]

    def release(self) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        self._lock.close()


def _private_folder(folder: Path) -> None:
    """Create ``folder`` (and missing parents) as 0700; narrow it, and the folders between it
    and an enclosing ``var/`` (``var/sandbox`` -> ``var`` too), to 0700 if they existed."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    chain = [folder, *folder.parents]
    var = next((i for i, path in enumerate(chain) if path.name == "var"), 0)
    for path in chain[: var + 1]:
        path.chmod(0o700)


def prepare(settings: Settings) -> Instance:
    """The folder, file modes and the lock; raises StartRefused if another server holds it."""
    os.umask(0o077)
    database = database_path(settings)
    backups = backup_dir(settings, database)
    _private_folder(database.parent)
    backups.mkdir(parents=True, exist_ok=True, mode=0o700)
    backups.chmod(0o700)
    lock_path = database.with_name(database.name + ".lock")
    lock = lock_path.open("a+", encoding="utf-8")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise StartRefused(
            f"another server is already running on {database} (pid {holder}, holding "
            f"{lock_path}). Stop it first, or give this one its own CRM_SQLITE_PATH."
        ) from None
    lock.seek(0)
    lock.truncate()
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    for path in (database, *database.parent.glob(database.name + "-*"), *backups.iterdir()):
        if path.is_file():
            path.chmod(0o600)
    return Instance(settings.mode, database, backups, lock)


def claim_mode(store: SettingsStore, mode: str, database: Path) -> None:
    """Record the mode in a new database; refuse a database another mode created."""

    def claim(current: object) -> object:
        return mode if current is None else current

    stored = store.update_setting(MODE_SETTING, claim)
    if stored != mode:
        raise StartRefused(
            f"{database} belongs to a {stored} server; a {mode} server never opens it "
            "(sandbox data is made up and must not mix with a fund's mail). Point "
            "CRM_SQLITE_PATH at another file, or start with CRM_MODE=" + str(stored) + "."
        )
