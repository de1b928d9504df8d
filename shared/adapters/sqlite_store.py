"""The Store on SQLite: the embedded default, and the fast path for most tests.

Each record is a row holding the model as JSON (``doc``) plus the columns its queries filter or
order on; side tables index the CRM's addresses/domains and each email's participants so that
lookups by address or domain use an index instead of scanning JSON.

Concurrency: WAL journal (readers never block the writer), one connection per thread (sqlite3
connections must not be shared across threads), and every read-modify-write in ``BEGIN
IMMEDIATE`` so the write lock is taken *before* the read: a second writer waits (busy timeout)
instead of reading a value that is about to change. ``SqliteHooks.after_read`` lets a test pause
a writer between its read and its write to prove that.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from shared.domain.activity import ActivityHit, ActivityHits, ActivityQuery
from shared.domain.activity_keys import (
    ActivityFields,
    activity_fields,
    activity_page_key,
    facet_token,
    is_listed,
)
from shared.domain.addresses import canonical_address
from shared.domain.models import (
    Activity,
    AuditEntry,
    CaptureProblem,
    Contact,
    Direction,
    Email,
    EmailAccount,
    Guard,
    Investor,
    InvestorLink,
    Organization,
    PauseReason,
    Proposal,
    ProposalStatus,
    Role,
    Sighting,
    SyncState,
    User,
    normalize_address,
    normalize_domain,
    sighting_id_for,
    time_key,
    utcnow,
)
from shared.domain.paging import (
    check_limit,
    check_purge_limit,
    encode_page_token,
    matched_window_keys,
    proposal_window_keys,
    split_time_id_key,
)
from shared.errors import ConflictError, NotFoundError
from shared.ports import Decision, Page, SyncStateChange

M = TypeVar("M", bound=BaseModel)

# Each entry migrates the schema from version i to i+1 (PRAGMA user_version); statements are
# split on ";", so keep semicolons out of comments. Never edit a shipped entry: append a new
# one, so every existing database file upgrades the same way.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE users (
        id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
        is_active INTEGER NOT NULL, doc TEXT NOT NULL);
    CREATE TABLE email_accounts (
        id TEXT PRIMARY KEY, address TEXT NOT NULL UNIQUE, deleted INTEGER NOT NULL,
        doc TEXT NOT NULL);
    CREATE TABLE organizations (id TEXT PRIMARY KEY, deleted INTEGER NOT NULL, doc TEXT NOT NULL);
    CREATE TABLE investors (
        id TEXT PRIMARY KEY, name_key TEXT NOT NULL, graveyard INTEGER NOT NULL,
        deleted INTEGER NOT NULL, doc TEXT NOT NULL);
    CREATE INDEX investors_by_name ON investors (name_key, id);
    CREATE TABLE contacts (id TEXT PRIMARY KEY, deleted INTEGER NOT NULL, doc TEXT NOT NULL);
    -- kind: what the value is (contact_address, investor_domain, ...), value: the key
    CREATE TABLE crm_keys (
        kind TEXT NOT NULL, value TEXT NOT NULL, record_id TEXT NOT NULL,
        PRIMARY KEY (kind, value, record_id));
    CREATE INDEX crm_keys_by_record ON crm_keys (kind, record_id);
    CREATE TABLE emails (id TEXT PRIMARY KEY, matched INTEGER NOT NULL, doc TEXT NOT NULL);
    -- kind: address | domain
    CREATE TABLE email_participants (
        kind TEXT NOT NULL, value TEXT NOT NULL, email_id TEXT NOT NULL,
        PRIMARY KEY (kind, value, email_id));
    CREATE INDEX email_participants_by_email ON email_participants (email_id);
    CREATE TABLE sightings (
        id TEXT PRIMARY KEY, account_id TEXT NOT NULL, gmail_message_id TEXT NOT NULL,
        email_id TEXT NOT NULL, deleted INTEGER NOT NULL, doc TEXT NOT NULL,
        UNIQUE (account_id, gmail_message_id));
    CREATE INDEX sightings_by_email ON sightings (email_id);
    CREATE TABLE investor_links (
        id TEXT PRIMARY KEY, email_id TEXT NOT NULL, investor_id TEXT NOT NULL,
        doc TEXT NOT NULL);
    CREATE INDEX investor_links_by_email ON investor_links (email_id);
    CREATE INDEX investor_links_by_investor ON investor_links (investor_id);
    CREATE TABLE proposals (
        id TEXT PRIMARY KEY, status TEXT NOT NULL, investor_id TEXT NOT NULL,
        sort_key TEXT NOT NULL, doc TEXT NOT NULL);
    CREATE INDEX proposals_by_key ON proposals (sort_key);
    CREATE INDEX proposals_by_status ON proposals (status, sort_key);
    CREATE INDEX proposals_by_investor ON proposals (investor_id, sort_key);
    CREATE TABLE activities (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
    CREATE TABLE app_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE guards (id TEXT PRIMARY KEY, doc TEXT NOT NULL);
    CREATE TABLE audit (
        id TEXT PRIMARY KEY, target TEXT NOT NULL, at TEXT NOT NULL, doc TEXT NOT NULL);
    CREATE INDEX audit_by_time ON audit (at, id);
    CREATE INDEX audit_by_target ON audit (target, at, id);
    """,
    """
    ALTER TABLE investors ADD COLUMN organization_id TEXT NOT NULL DEFAULT '';
    UPDATE investors SET organization_id = COALESCE(json_extract(doc, '$.organization_id'), '');
    CREATE INDEX investors_by_organization ON investors (organization_id, id);
    CREATE TABLE capture_problems (
        account_id TEXT NOT NULL, gmail_message_id TEXT NOT NULL, doc TEXT NOT NULL,
        PRIMARY KEY (account_id, gmail_message_id));
    """,
    # Email.matched_key: rows written before this version get theirs on their next write.
    """
    ALTER TABLE emails ADD COLUMN matched_key TEXT NOT NULL DEFAULT '';
    CREATE INDEX emails_by_matched_key ON emails (matched_key);
    """,
    # The email-activity panel (SqliteStore._sync_activity). account_addresses: the team's
    # addresses (mailboxes and aliases, deleted mailboxes left out), which decide direction.
    # activity: one row per listed email, seq being the panel's order as an integer, so the
    # facet index and the FTS5 rowids both run in that order. Rows of existing mail are made by
    # the data step of this version (_DATA_MIGRATIONS).
    """
    CREATE TABLE account_addresses (
        address TEXT NOT NULL, account_id TEXT NOT NULL, PRIMARY KEY (address, account_id));
    CREATE INDEX account_addresses_by_account ON account_addresses (account_id);
    INSERT OR IGNORE INTO account_addresses (address, account_id)
        SELECT address, id FROM email_accounts WHERE deleted = 0;
    INSERT OR IGNORE INTO account_addresses (address, account_id)
        SELECT j.value, a.id FROM email_accounts a, json_each(a.doc, '$.aliases') j
        WHERE a.deleted = 0;
    CREATE TABLE activity (
        seq INTEGER PRIMARY KEY, email_id TEXT NOT NULL UNIQUE, activity_key TEXT NOT NULL,
        direction TEXT NOT NULL, words TEXT NOT NULL, facets TEXT NOT NULL);
    CREATE TABLE activity_facets (
        facet INTEGER NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (facet, seq)) WITHOUT ROWID;
    CREATE VIRTUAL TABLE activity_fts USING fts5(
        words, facets, content = 'activity', content_rowid = 'seq',
        tokenize = 'ascii', prefix = '2 3', detail = column);
    """,
    # Proposals by mailbox (the account whose capture proposed them).
    """
    ALTER TABLE proposals ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
    UPDATE proposals SET account_id = COALESCE(json_extract(doc, '$.account_id'), '');
    CREATE INDEX proposals_by_account ON proposals (account_id, sort_key);
    """,
)
# Python steps run right after a version's SQL, in the same transaction: what SQL cannot
# compute (the panel's rows need the shared tokenizer).
_DATA_MIGRATIONS: dict[int, str] = {4: "_backfill_activity"}

_BUSY_TIMEOUT_S = 30.0


@dataclass
class SqliteHooks:
    """Test seams. ``after_read(operation)`` runs inside a read-modify-write, after its reads and
    before its writes, while the write lock is held."""

    after_read: Callable[[str], None] | None = None


def _dump(model: BaseModel) -> str:
    return model.model_dump_json()


def _load(cls: type[M], doc: str) -> M:
    return cls.model_validate_json(doc)


def _placeholders(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


# -- the panel's order and facets (SqliteStore._sync_activity) ----------------------------------

_SLOT_BITS = 20  # slots per second: room for every microsecond, and then some
_SEQ_MAX = (1 << 63) - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ALL = facet_token(None, None, None)


def _seq_bucket(key: str) -> tuple[int, int, int]:
    """The seqs of the key's second (lowest, highest) and its natural slot (the microsecond)."""
    when, _ = split_time_id_key(key)
    delta = when - _EPOCH
    second = delta.days * 86_400 + delta.seconds
    low = second << _SLOT_BITS
    return low, low + (1 << _SLOT_BITS) - 1, low + delta.microseconds


def _fts_facet(token: str) -> str:
    """A facet token as one FTS5 word (ASCII letters and digits) of 64 bits."""
    return "f" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def _facet_id(fts_facet: str) -> int:
    """The same 64 bits as a signed integer: the facet index's key."""
    return int(fts_facet[1:], 16) - (1 << 63)


def _fts_facets(fields: ActivityFields) -> str:
    return " ".join(_fts_facet(token) for token in fields.facets)


class SqliteStore:
    """Store adapter over one SQLite file (path from settings)."""

    def __init__(self, path: Path, *, hooks: SqliteHooks | None = None) -> None:
        self.path = Path(path)
        self.hooks = hooks or SqliteHooks()
        # One connection per thread; it closes when its thread ends and the local is collected.
        self._local = threading.local()
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    # -- connections and transactions --------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: no implicit transactions; we say BEGIN IMMEDIATE ourselves.
            conn = sqlite3.connect(
                self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=True
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(f"PRAGMA busy_timeout={int(_BUSY_TIMEOUT_S * 1000)}")
            self._local.conn = conn
        return conn

    def close(self) -> None:
        """Close this thread's connection (other threads' connections close with them)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def _after_read(self, operation: str) -> None:
        if self.hooks.after_read is not None:
            self.hooks.after_read(operation)

    def _migrate(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            for index in range(version, len(MIGRATIONS)):
                for statement in MIGRATIONS[index].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                data_step = _DATA_MIGRATIONS.get(index + 1)
                if data_step is not None:
                    getattr(self, data_step)(conn)
                conn.execute(f"PRAGMA user_version={index + 1}")

    def schema_version(self) -> int:
        return int(self._connection().execute("PRAGMA user_version").fetchone()[0])

    def _one(self, cls: type[M], sql: str, params: Sequence[object] = ()) -> M | None:
        row = self._connection().execute(sql, params).fetchone()
        return _load(cls, row[0]) if row else None

    def _many(self, cls: type[M], sql: str, params: Sequence[object] = ()) -> list[M]:
        return [_load(cls, row[0]) for row in self._connection().execute(sql, params)]

    # -- users --------------------------------------------------------------------------------

    @staticmethod
    def _put_user(conn: sqlite3.Connection, user: User) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO users (id, email, role, is_active, doc) VALUES (?,?,?,?,?)",
            (user.id, user.email, user.role.value, int(user.is_active), _dump(user)),
        )

    def add_user(self, user: User) -> bool:
        with self._write() as conn:
            exists = conn.execute(
                "SELECT 1 FROM users WHERE id = ? OR email = ?", (user.id, user.email)
            ).fetchone()
            if exists:
                return False
            self._put_user(conn, user)
            row = conn.execute(
                "SELECT doc FROM email_accounts WHERE address = ?", (user.email,)
            ).fetchone()
            account = _load(EmailAccount, row[0]) if row else None
            self._after_read("add_user")
            if account is not None and account.is_claimable():
                self._put_account(conn, account.owned_by(user))
            return True

    def get_user(self, user_id: str) -> User | None:
        return self._one(User, "SELECT doc FROM users WHERE id = ?", (user_id,))

    def get_user_by_email(self, email: str) -> User | None:
        return self._one(User, "SELECT doc FROM users WHERE email = ?", (email.strip().lower(),))

    def list_users(self, *, active_only: bool = False) -> list[User]:
        where = "WHERE is_active = 1" if active_only else ""
        return self._many(User, f"SELECT doc FROM users {where} ORDER BY email")  # noqa: S608

    def list_active_admins(self) -> list[User]:
        return self._many(
            User,
            "SELECT doc FROM users WHERE is_active = 1 AND role = ? ORDER BY email",
            (Role.ADMIN.value,),
        )

    def change_user(
        self, user_id: str, *, role: Role | None = None, is_active: bool | None = None
    ) -> User:
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                raise NotFoundError("no such user", user_id=user_id)
            user = _load(User, row[0])
            other_admins = conn.execute(
                "SELECT COUNT(*) FROM users WHERE is_active = 1 AND role = ? AND id != ?",
                (Role.ADMIN.value, user_id),
            ).fetchone()[0]
            self._after_read("change_user")
            changed = user.with_role(
                role=role, is_active=is_active, other_active_admins=other_admins, at=utcnow()
            )
            self._put_user(conn, changed)
            return changed

    def bootstrap_admin(self, email: str, name: str = "") -> bool:
        address = normalize_address(email)
        with self._write() as conn:
            admins = conn.execute(
                "SELECT COUNT(*) FROM users WHERE is_active = 1 AND role = ?", (Role.ADMIN.value,)
            ).fetchone()[0]
            row = conn.execute("SELECT doc FROM users WHERE email = ?", (address,)).fetchone()
            self._after_read("bootstrap_admin")
            if admins:
                return False
            if row is None:
                user = User.new(address, name, Role.ADMIN)
            else:
                user = _load(User, row[0]).model_copy(
                    update={"role": Role.ADMIN, "is_active": True, "updated_at": utcnow()}
                )
            self._put_user(conn, user)
            return True

    # -- mailboxes ----------------------------------------------------------------------------

    @staticmethod
    def _put_account(conn: sqlite3.Connection, account: EmailAccount) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO email_accounts (id, address, deleted, doc) VALUES (?,?,?,?)",
            (account.id, account.address, int(account.deleted), _dump(account)),
        )
        # The team's addresses (direction of mail): kept with the mailbox, in its transaction.
        conn.execute("DELETE FROM account_addresses WHERE account_id = ?", (account.id,))
        if not account.deleted:
            conn.executemany(
                "INSERT OR IGNORE INTO account_addresses (address, account_id) VALUES (?,?)",
                [(address, account.id) for address in account.addresses()],
            )

    def add_email_account(self, account: EmailAccount) -> bool:
        with self._write() as conn:
            exists = conn.execute(
                "SELECT 1 FROM email_accounts WHERE id = ? OR address = ?",
                (account.id, account.address),
            ).fetchone()
            if exists:
                return False
            if account.user_id is None and not account.deleted:
                row = conn.execute(
                    "SELECT doc FROM users WHERE email = ?", (account.address,)
                ).fetchone()
                self._after_read("add_email_account")
                if row is not None:
                    account = account.owned_by(_load(User, row[0]))
            self._put_account(conn, account)
            return True

    def get_email_account(self, account_id: str) -> EmailAccount | None:
        return self._one(EmailAccount, "SELECT doc FROM email_accounts WHERE id = ?", (account_id,))

    def get_email_account_by_address(self, address: str) -> EmailAccount | None:
        return self._one(
            EmailAccount,
            "SELECT doc FROM email_accounts WHERE address = ?",
            (address.strip().lower(),),
        )

    def list_email_accounts(self, *, include_deleted: bool = False) -> list[EmailAccount]:
        where = "" if include_deleted else "WHERE deleted = 0"
        return self._many(
            EmailAccount,
            f"SELECT doc FROM email_accounts {where} ORDER BY address",  # noqa: S608
        )

    def _modify_account(
        self, account_id: str, operation: str, change: Callable[[EmailAccount], EmailAccount]
    ) -> EmailAccount:
        with self._write() as conn:
            row = conn.execute(
                "SELECT doc FROM email_accounts WHERE id = ?", (account_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError("no such mailbox", account_id=account_id)
            self._after_read(operation)
            account = change(_load(EmailAccount, row[0]))
            self._put_account(conn, account)
            return account

    def set_email_account_paused(
        self, account_id: str, paused: bool, *, reason: PauseReason = PauseReason.ADMIN
    ) -> EmailAccount:
        return self._modify_account(
            account_id, "set_email_account_paused", lambda a: a.with_pause(paused, reason)
        )

    def set_email_account_owner(self, account_id: str, owner_email: str = "") -> EmailAccount:
        with self._write() as conn:
            row = conn.execute(
                "SELECT doc FROM email_accounts WHERE id = ?", (account_id,)
            ).fetchone()
            if row is None:
                raise NotFoundError("no such mailbox", account_id=account_id)
            account = _load(EmailAccount, row[0])
            address = normalize_address(owner_email) if owner_email.strip() else account.address
            found = conn.execute("SELECT doc FROM users WHERE email = ?", (address,)).fetchone()
            self._after_read("set_email_account_owner")
            if found is None and owner_email.strip():
                raise NotFoundError("no user with this address", email=address)
            changed = account.owned_by(_load(User, found[0]) if found else None)
            self._put_account(conn, changed)
            return changed

    def offboard_email_account(self, account_id: str) -> EmailAccount:
        return self._modify_account(
            account_id, "offboard_email_account", lambda a: a.offboarded(utcnow())
        )

    def soft_delete_account_sightings(self, account_id: str, *, limit: int = 100) -> int:
        check_purge_limit(limit)
        with self._write() as conn:
            rows = conn.execute(
                "SELECT doc FROM sightings WHERE account_id = ? AND deleted = 0 ORDER BY id"
                " LIMIT ?",
                (account_id, limit),
            ).fetchall()
            sightings = [_load(Sighting, row[0]) for row in rows]
            self._after_read("soft_delete_account_sightings")
            now = utcnow()
            for sighting in sightings:
                gone = sighting.model_copy(update={"deleted": True, "deleted_at": now})
                conn.execute(
                    "UPDATE sightings SET deleted = 1, doc = ? WHERE id = ?",
                    (_dump(gone), gone.id),
                )
            for email_id in sorted({s.email_id for s in sightings}):
                email = self._stored_email(conn, email_id)
                if email is not None:
                    self._refresh_email(conn, email)
            return len(sightings)

    def update_sync_state(self, account_id: str, change: SyncStateChange) -> SyncState:
        account = self._modify_account(
            account_id, "update_sync_state", lambda a: a.with_sync_change(change)
        )
        return account.sync

    @staticmethod
    def _refuse_offboarded(conn: sqlite3.Connection, account_id: str) -> None:
        """No sighting is written for, or restored in, an offboarded mailbox (inside the
        caller's transaction, so an offboarding that commits first is always seen)."""
        row = conn.execute("SELECT doc FROM email_accounts WHERE id = ?", (account_id,)).fetchone()
        if row is not None:
            _load(EmailAccount, row[0]).refuse_offboarded()

    def own_addresses(self) -> set[str]:
        return {
            address for account in self.list_email_accounts() for address in account.addresses()
        }

    # -- CRM records --------------------------------------------------------------------------

    @staticmethod
    def _put_keys(
        conn: sqlite3.Connection, kind: str, record_id: str, values: Iterable[str]
    ) -> None:
        conn.execute("DELETE FROM crm_keys WHERE kind = ? AND record_id = ?", (kind, record_id))
        conn.executemany(
            "INSERT OR IGNORE INTO crm_keys (kind, value, record_id) VALUES (?,?,?)",
            [(kind, value, record_id) for value in values],
        )

    def upsert_organization(self, organization: Organization) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO organizations (id, deleted, doc) VALUES (?,?,?)",
                (organization.id, int(organization.deleted), _dump(organization)),
            )
            self._put_keys(conn, "organization_domain", organization.id, organization.domains)

    def upsert_investor(self, investor: Investor) -> None:
        investor = investor.revalidated()
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO investors"
                " (id, name_key, graveyard, deleted, organization_id, doc) VALUES (?,?,?,?,?,?)",
                (
                    investor.id,
                    investor.name_key,
                    int(investor.graveyard),
                    int(investor.deleted),
                    investor.organization_id or "",
                    _dump(investor),
                ),
            )
            self._put_keys(conn, "investor_address", investor.id, investor.email_keys)
            self._put_keys(conn, "investor_domain", investor.id, investor.domains)

    def upsert_contact(self, contact: Contact) -> None:
        contact = contact.revalidated()
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO contacts (id, deleted, doc) VALUES (?,?,?)",
                (contact.id, int(contact.deleted), _dump(contact)),
            )
            self._put_keys(conn, "contact_address", contact.id, contact.email_keys)

    def get_organization(self, organization_id: str) -> Organization | None:
        return self._one(
            Organization, "SELECT doc FROM organizations WHERE id = ?", (organization_id,)
        )

    def get_investor(self, investor_id: str) -> Investor | None:
        return self._one(Investor, "SELECT doc FROM investors WHERE id = ?", (investor_id,))

    def get_contact(self, contact_id: str) -> Contact | None:
        return self._one(Contact, "SELECT doc FROM contacts WHERE id = ?", (contact_id,))

    def _find_by_keys(self, cls: type[M], table: str, kind: str, values: Iterable[str]) -> list[M]:
        keys = sorted(set(values))
        if not keys:
            return []
        sql = (
            f"SELECT t.doc FROM {table} t WHERE t.deleted = 0 AND t.id IN ("  # noqa: S608
            f" SELECT record_id FROM crm_keys WHERE kind = ? AND value IN ({_placeholders(keys)}))"
            " ORDER BY t.id"
        )
        return self._many(cls, sql, (kind, *keys))

    def find_contacts_by_addresses(self, addresses: Iterable[str]) -> list[Contact]:
        keys = [canonical_address(a) for a in addresses]
        return self._find_by_keys(Contact, "contacts", "contact_address", keys)

    def find_investors_by_addresses(self, addresses: Iterable[str]) -> list[Investor]:
        keys = [canonical_address(a) for a in addresses]
        return self._find_by_keys(Investor, "investors", "investor_address", keys)

    def find_organizations_by_domains(self, domains: Iterable[str]) -> list[Organization]:
        keys = [normalize_domain(d) for d in domains]
        return self._find_by_keys(Organization, "organizations", "organization_domain", keys)

    def find_investors_by_domains(self, domains: Iterable[str]) -> list[Investor]:
        keys = [normalize_domain(d) for d in domains]
        return self._find_by_keys(Investor, "investors", "investor_domain", keys)

    def find_investors_by_organizations(self, organization_ids: Iterable[str]) -> list[Investor]:
        keys = sorted({key for key in organization_ids if key})
        if not keys:
            return []
        return self._many(
            Investor,
            f"SELECT doc FROM investors WHERE deleted = 0"  # noqa: S608
            f" AND organization_id IN ({_placeholders(keys)}) ORDER BY id",
            keys,
        )

    def find_contacts_by_investors(self, investor_ids: Iterable[str]) -> list[Contact]:
        # No column of its own: asked only when an investor is created, deleted or restored,
        # and a fund's contacts are few enough to scan.
        keys = sorted({key for key in investor_ids if key})
        found: list[Contact] = []
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            found += self._many(
                Contact,
                "SELECT doc FROM contacts WHERE deleted = 0"  # noqa: S608
                f" AND json_extract(doc, '$.investor_id') IN ({_placeholders(chunk)})",
                chunk,
            )
        return sorted(found, key=lambda contact: contact.id)

    def list_investors(
        self, *, include_graveyard: bool = True, include_deleted: bool = False
    ) -> list[Investor]:
        clauses = []
        if not include_graveyard:
            clauses.append("graveyard = 0")
        if not include_deleted:
            clauses.append("deleted = 0")
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return self._many(
            Investor,
            f"SELECT doc FROM investors {where} ORDER BY name_key, id",  # noqa: S608
        )

    # -- emails, sightings, links -------------------------------------------------------------

    def _refresh_email(self, conn: sqlite3.Connection, email: Email) -> Email:
        """Recompute the denormalised fields from sightings and links, inside the caller's
        transaction, and write the email."""
        live = sorted(
            {
                row[0]
                for row in conn.execute(
                    "SELECT account_id FROM sightings WHERE email_id = ? AND deleted = 0",
                    (email.id,),
                )
            }
        )
        investors = sorted(
            {
                row[0]
                for row in conn.execute(
                    "SELECT investor_id FROM investor_links WHERE email_id = ?", (email.id,)
                )
            }
        )
        email = email.denormalised(live, investors, at=utcnow())
        conn.execute(
            "INSERT OR REPLACE INTO emails (id, matched, matched_key, doc) VALUES (?,?,?,?)",
            (email.id, int(email.matched), email.matched_key, _dump(email)),
        )
        self._sync_activity(conn, email)
        return email

    def _stored_email(self, conn: sqlite3.Connection, email_id: str) -> Email | None:
        row = conn.execute("SELECT doc FROM emails WHERE id = ?", (email_id,)).fetchone()
        return _load(Email, row[0]) if row else None

    def upsert_email(self, email: Email) -> bool:
        with self._write() as conn:
            stored = self._stored_email(conn, email.id)
            self._after_read("upsert_email")
            merged = email.merged_into(stored)
            conn.execute("DELETE FROM email_participants WHERE email_id = ?", (email.id,))
            conn.executemany(
                "INSERT OR IGNORE INTO email_participants (kind, value, email_id) VALUES (?,?,?)",
                [("address", a, email.id) for a in merged.participant_addresses]
                + [("domain", d, email.id) for d in merged.participant_domains],
            )
            self._refresh_email(conn, merged)
            return stored is None

    def update_email(self, email_id: str, change: Callable[[Email], Email | None]) -> Email | None:
        with self._write() as conn:
            stored = self._stored_email(conn, email_id)
            self._after_read("update_email")
            if stored is None:
                return None
            changed = change(stored)
            if changed is None:
                return stored
            if changed.id != stored.id:
                raise ValueError("update_email cannot change an email's id")
            merged = changed.merged_into(stored)
            self._put_participants(conn, merged)
            return self._refresh_email(conn, merged)

    @staticmethod
    def _put_participants(conn: sqlite3.Connection, email: Email) -> None:
        conn.execute("DELETE FROM email_participants WHERE email_id = ?", (email.id,))
        conn.executemany(
            "INSERT OR IGNORE INTO email_participants (kind, value, email_id) VALUES (?,?,?)",
            [("address", a, email.id) for a in email.participant_addresses]
            + [("domain", d, email.id) for d in email.participant_domains],
        )

    def get_email(self, email_id: str) -> Email | None:
        return self._one(Email, "SELECT doc FROM emails WHERE id = ?", (email_id,))

    def list_emails(self, *, limit: int = 500, after_id: str = "") -> list[Email]:
        check_limit(limit)
        return self._many(
            Email, "SELECT doc FROM emails WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )

    def list_emails_matched_between(
        self, since: datetime, until: datetime, *, limit: int = 500, page_token: str = ""
    ) -> Page[Email]:
        check_limit(limit)
        lower, upper = matched_window_keys(since, until, page_token)
        rows = self._many(
            Email,
            "SELECT doc FROM emails WHERE matched_key > ? AND matched_key <= ?"
            " ORDER BY matched_key LIMIT ?",
            (lower, upper, limit + 1),
        )
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items, encode_page_token(items[-1].matched_key) if more else "")

    def record_sighting(self, sighting: Sighting) -> bool:
        with self._write() as conn:
            email = self._stored_email(conn, sighting.email_id)
            if email is None:
                raise NotFoundError("sighting of an unknown email", email_id=sighting.email_id)
            self._refuse_offboarded(conn, sighting.account_id)
            existed = conn.execute(
                "SELECT 1 FROM sightings WHERE id = ?", (sighting.id,)
            ).fetchone()
            self._after_read("record_sighting")
            conn.execute(
                "INSERT OR REPLACE INTO sightings"
                " (id, account_id, gmail_message_id, email_id, deleted, doc) VALUES (?,?,?,?,?,?)",
                (
                    sighting.id,
                    sighting.account_id,
                    sighting.gmail_message_id,
                    sighting.email_id,
                    int(sighting.deleted),
                    _dump(sighting),
                ),
            )
            self._refresh_email(conn, email)
            return existed is None

    def set_sighting_deleted(self, account_id: str, gmail_message_id: str, deleted: bool) -> bool:
        sighting_id = sighting_id_for(account_id, gmail_message_id)
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM sightings WHERE id = ?", (sighting_id,)).fetchone()
            if row is None:
                return False
            sighting = _load(Sighting, row[0])
            if not deleted:
                self._refuse_offboarded(conn, account_id)
            email = self._stored_email(conn, sighting.email_id)
            self._after_read("set_sighting_deleted")
            if sighting.deleted != deleted:
                sighting = sighting.model_copy(
                    update={"deleted": deleted, "deleted_at": utcnow() if deleted else None}
                )
                conn.execute(
                    "UPDATE sightings SET deleted = ?, doc = ? WHERE id = ?",
                    (int(deleted), _dump(sighting), sighting_id),
                )
            if email is not None:
                self._refresh_email(conn, email)
            return True

    def get_sighting(self, account_id: str, gmail_message_id: str) -> Sighting | None:
        return self._one(
            Sighting,
            "SELECT doc FROM sightings WHERE id = ?",
            (sighting_id_for(account_id, gmail_message_id),),
        )

    def list_sightings(self, email_id: str) -> list[Sighting]:
        return self._many(
            Sighting, "SELECT doc FROM sightings WHERE email_id = ? ORDER BY id", (email_id,)
        )

    def sighted_message_ids(self, account_id: str, gmail_message_ids: Iterable[str]) -> set[str]:
        wanted = sorted(set(gmail_message_ids))
        found: set[str] = set()
        # SQLite allows 32,766 parameters; stay far below it.
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = self._connection().execute(
                "SELECT gmail_message_id FROM sightings WHERE account_id = ?"  # noqa: S608
                f" AND gmail_message_id IN ({_placeholders(chunk)})",
                (account_id, *chunk),
            )
            found.update(row[0] for row in rows)
        return found

    def record_capture_problem(self, problem: CaptureProblem) -> CaptureProblem:
        with self._write() as conn:
            row = conn.execute(
                "SELECT doc FROM capture_problems WHERE account_id = ? AND gmail_message_id = ?",
                (problem.account_id, problem.gmail_message_id),
            ).fetchone()
            self._after_read("record_capture_problem")
            stored = problem.counted_after(_load(CaptureProblem, row[0]) if row else None)
            conn.execute(
                "INSERT OR REPLACE INTO capture_problems (account_id, gmail_message_id, doc)"
                " VALUES (?,?,?)",
                (stored.account_id, stored.gmail_message_id, _dump(stored)),
            )
            return stored

    def list_capture_problems(self, account_id: str, *, limit: int = 100) -> list[CaptureProblem]:
        check_limit(limit)
        return self._many(
            CaptureProblem,
            "SELECT doc FROM capture_problems WHERE account_id = ?"
            " ORDER BY gmail_message_id LIMIT ?",
            (account_id, limit),
        )

    def clear_capture_problem(self, account_id: str, gmail_message_id: str) -> bool:
        with self._write() as conn:
            removed = conn.execute(
                "DELETE FROM capture_problems WHERE account_id = ? AND gmail_message_id = ?",
                (account_id, gmail_message_id),
            ).rowcount
        return bool(removed)

    def link_email_to_investor(self, link: InvestorLink) -> bool:
        with self._write() as conn:
            email = self._stored_email(conn, link.email_id)
            if email is None:
                raise NotFoundError("link of an unknown email", email_id=link.email_id)
            existed = conn.execute(
                "SELECT 1 FROM investor_links WHERE id = ?", (link.id,)
            ).fetchone()
            self._after_read("link_email_to_investor")
            if existed is None:
                conn.execute(
                    "INSERT INTO investor_links (id, email_id, investor_id, doc) VALUES (?,?,?,?)",
                    (link.id, link.email_id, link.investor_id, _dump(link)),
                )
            self._refresh_email(conn, email)
            return existed is None

    def unlink_email_from_investor(self, email_id: str, investor_id: str) -> int:
        with self._write() as conn:
            email = self._stored_email(conn, email_id)
            self._after_read("unlink_email_from_investor")
            removed = conn.execute(
                "DELETE FROM investor_links WHERE email_id = ? AND investor_id = ?",
                (email_id, investor_id),
            ).rowcount
            if email is not None and removed:
                self._refresh_email(conn, email)
            return int(removed)

    def list_links(self, email_id: str) -> list[InvestorLink]:
        return self._many(
            InvestorLink,
            "SELECT doc FROM investor_links WHERE email_id = ? ORDER BY id",
            (email_id,),
        )

    def find_emails_by_participants(
        self,
        *,
        addresses: Sequence[str] = (),
        domains: Sequence[str] = (),
        limit: int = 500,
        after_id: str = "",
    ) -> list[Email]:
        check_limit(limit)
        keys = [("address", normalize_address(a)) for a in addresses] + [
            ("domain", normalize_domain(d)) for d in domains
        ]
        if not keys:
            return []
        condition = " OR ".join("(kind = ? AND value = ?)" for _ in keys)
        params: list[object] = [part for key in keys for part in key]
        sql = (
            "SELECT doc FROM emails WHERE id IN ("  # noqa: S608
            f" SELECT email_id FROM email_participants WHERE {condition})"
            " AND id > ? ORDER BY id LIMIT ?"
        )
        return self._many(Email, sql, (*params, after_id, limit))

    # -- the email-activity panel -------------------------------------------------------------
    #
    # Each listed email has one ``activity`` row whose integer ``seq`` sorts as the panel does
    # (by date, ties by id): ``seq = second << 20 | slot``, the slot being the microsecond when
    # free, else the nearest free one that keeps the key order inside that second (rows of the
    # second move up by one when none is free: a handful, ever). So the facet index
    # (facet, seq) is a range scan in the panel's order for any combination of filters, and
    # FTS5, whose rowids are the seqs, answers ``q`` newest first with ``ORDER BY rowid DESC``
    # and stops after one page, instead of sorting every match. Facets are 64-bit hashes of
    # the shared tokens (``activity_keys.activity_fields``); the FTS ``facets`` column holds the
    # same hashes as words, so ``q`` with filters is one FTS5 query.

    def _sync_activity(self, conn: sqlite3.Connection, email: Email) -> bool:
        """Make the email's activity rows follow it (inside the caller's transaction); True if
        anything changed."""
        row = conn.execute(
            "SELECT seq, activity_key, direction, words, facets FROM activity WHERE email_id = ?",
            (email.id,),
        ).fetchone()
        if not is_listed(email):
            if row is not None:
                self._drop_activity(conn, row)
            return row is not None
        sender = email.sender.address if email.sender else ""
        own = (
            {sender}
            if sender
            and conn.execute(
                "SELECT 1 FROM account_addresses WHERE address = ? LIMIT 1", (sender,)
            ).fetchone()
            else set()
        )
        fields = activity_fields(email, own)
        words, facets = " ".join(fields.words), _fts_facets(fields)
        wanted = (fields.key, fields.direction.value, words, facets)
        if row is not None and tuple(row[1:]) == wanted:
            return False
        seq: int | None = None
        if row is not None:
            self._drop_activity(conn, row)
            seq = row[0] if row[1] == fields.key else None
        if seq is None:
            seq = self._free_seq(conn, fields.key)
        self._put_activity(conn, seq, email.id, *wanted)
        return True

    @staticmethod
    def _put_activity(
        conn: sqlite3.Connection,
        seq: int,
        email_id: str,
        key: str,
        direction: str,
        words: str,
        facets: str,
    ) -> None:
        conn.execute(
            "INSERT INTO activity (seq, email_id, activity_key, direction, words, facets)"
            " VALUES (?,?,?,?,?,?)",
            (seq, email_id, key, direction, words, facets),
        )
        conn.executemany(
            "INSERT INTO activity_facets (facet, seq) VALUES (?,?)",
            [(_facet_id(term), seq) for term in facets.split()],
        )
        conn.execute(
            "INSERT INTO activity_fts (rowid, words, facets) VALUES (?,?,?)", (seq, words, facets)
        )

    @staticmethod
    def _drop_activity(conn: sqlite3.Connection, row: Sequence[Any]) -> None:
        """Remove one activity row (``seq, key, direction, words, facets``) and its index rows
        (FTS5 external content: the delete names the values that were indexed)."""
        seq, words, facets = row[0], row[3], row[4]
        conn.execute(
            "INSERT INTO activity_fts (activity_fts, rowid, words, facets)"
            " VALUES ('delete', ?, ?, ?)",
            (seq, words, facets),
        )
        conn.executemany(
            "DELETE FROM activity_facets WHERE facet = ? AND seq = ?",
            [(_facet_id(term), seq) for term in facets.split()],
        )
        conn.execute("DELETE FROM activity WHERE seq = ?", (seq,))

    def _free_seq(self, conn: sqlite3.Connection, key: str) -> int:
        """A seq for ``key`` that keeps seq order equal to key order."""
        low, high, natural = _seq_bucket(key)
        before = conn.execute(
            "SELECT MAX(seq) FROM activity WHERE seq BETWEEN ? AND ? AND activity_key < ?",
            (low, high, key),
        ).fetchone()[0]
        after = conn.execute(
            "SELECT MIN(seq) FROM activity WHERE seq BETWEEN ? AND ? AND activity_key > ?",
            (low, high, key),
        ).fetchone()[0]
        first = low if before is None else before + 1
        last = high if after is None else after - 1
        if first <= last:
            return min(max(natural, first), last)
        # No gap between the neighbours: move the run of rows starting at ``after`` up by one.
        run = [after]
        for (seq,) in conn.execute(
            "SELECT seq FROM activity WHERE seq > ? AND seq <= ? ORDER BY seq", (after, high)
        ):
            if seq != run[-1] + 1:
                break
            run.append(seq)
        if run[-1] >= high:
            raise ConflictError("too many emails in one second for the activity index")
        for seq in reversed(run):
            moved = conn.execute(
                "SELECT seq, activity_key, direction, words, facets, email_id FROM activity"
                " WHERE seq = ?",
                (seq,),
            ).fetchone()
            self._drop_activity(conn, moved)
            self._put_activity(conn, seq + 1, moved[5], *moved[1:5])
        return int(after)

    def _backfill_activity(self, conn: sqlite3.Connection) -> None:
        """Data step of schema version 4: activity rows for the mail stored before it."""
        for (doc,) in conn.execute("SELECT doc FROM emails WHERE matched = 1").fetchall():
            self._sync_activity(conn, _load(Email, doc))

    def query_activity(self, query: ActivityQuery) -> ActivityHits:
        check_limit(query.limit)
        resume = activity_page_key(query.page_token)
        conn = self._connection()
        # A read transaction: the bound and the page see one snapshot.
        conn.execute("BEGIN")
        try:
            upper = self._seq_bound(conn, resume) if resume else _SEQ_MAX
            facet = facet_token(
                query.investor_id,
                query.account_id,
                query.direction.value if query.direction else None,
            )
            # The body is dropped in SQL: a page never shows it, and it is most of a document.
            columns = "a.activity_key, a.direction, json_remove(e.doc, '$.body')"
            if query.words:
                terms = [f'words : "{word}"*' for word in query.words]
                if facet != _ALL:
                    terms.append(f'facets : "{_fts_facet(facet)}"')
                sql = (
                    f"SELECT {columns} FROM (SELECT rowid AS seq FROM activity_fts"  # noqa: S608
                    " WHERE activity_fts MATCH ? AND rowid < ? ORDER BY rowid DESC LIMIT ?) m"
                    " JOIN activity a ON a.seq = m.seq JOIN emails e ON e.id = a.email_id"
                    " ORDER BY m.seq DESC"
                )
                params: tuple[object, ...] = (" AND ".join(terms), upper, query.limit + 1)
            else:
                sql = (
                    f"SELECT {columns} FROM activity_facets f"  # noqa: S608
                    " JOIN activity a ON a.seq = f.seq JOIN emails e ON e.id = a.email_id"
                    " WHERE f.facet = ? AND f.seq < ? ORDER BY f.seq DESC LIMIT ?"
                )
                params = (_facet_id(_fts_facet(facet)), upper, query.limit + 1)
            rows = conn.execute(sql, params).fetchall()
        finally:
            conn.execute("COMMIT")
        page = rows[: query.limit]
        hits = [ActivityHit(_load(Email, doc), Direction(way)) for _, way, doc in page]
        more = len(rows) > query.limit
        return ActivityHits(hits, more, encode_page_token(page[-1][0]) if more else "")

    @staticmethod
    def _seq_bound(conn: sqlite3.Connection, key: str) -> int:
        """The seq below which every row's key is below ``key`` (the row itself may be gone)."""
        low, high, _ = _seq_bucket(key)
        found = conn.execute(
            "SELECT MIN(seq) FROM activity WHERE seq BETWEEN ? AND ? AND activity_key >= ?",
            (low, high, key),
        ).fetchone()[0]
        return int(found) if found is not None else high + 1

    def refresh_activity_direction(self, addresses: Sequence[str]) -> int:
        senders = {normalize_address(a) for a in addresses}
        changed, after = 0, ""
        while senders:
            page = self.find_emails_by_participants(
                addresses=sorted(senders), limit=500, after_id=after
            )
            if not page:
                break
            for found in page:
                if found.sender is None or found.sender.address not in senders:
                    continue
                with self._write() as conn:
                    email = self._stored_email(conn, found.id)
                    if email is not None and self._sync_activity(conn, email):
                        changed += 1
            after = page[-1].id
        return changed

    def get_investors(self, investor_ids: Iterable[str]) -> list[Investor]:
        wanted = sorted(set(investor_ids))
        found: list[Investor] = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found += self._many(
                Investor,
                f"SELECT doc FROM investors WHERE id IN ({_placeholders(chunk)})"  # noqa: S608
                " ORDER BY id",
                chunk,
            )
        return found

    # -- proposals and activities -------------------------------------------------------------

    @staticmethod
    def _put_proposal(conn: sqlite3.Connection, proposal: Proposal) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO proposals"
            " (id, status, investor_id, account_id, sort_key, doc) VALUES (?,?,?,?,?,?)",
            (
                proposal.id,
                proposal.status.value,
                proposal.investor_id,
                proposal.account_id or "",
                proposal.sort_key,
                _dump(proposal),
            ),
        )

    def create_proposal(self, proposal: Proposal) -> bool:
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM proposals WHERE id = ?", (proposal.id,)).fetchone():
                return False
            self._put_proposal(conn, proposal)
            return True

    def get_proposal(self, proposal_id: str) -> Proposal | None:
        return self._one(Proposal, "SELECT doc FROM proposals WHERE id = ?", (proposal_id,))

    def decide_proposal(self, proposal_id: str, status: ProposalStatus, actor: str) -> Decision:
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM proposals WHERE id = ?", (proposal_id,)).fetchone()
            if row is None:
                raise NotFoundError("no such proposal", proposal_id=proposal_id)
            proposal = _load(Proposal, row[0])
            activity_row = conn.execute(
                "SELECT doc FROM activities WHERE id = ?", (proposal_id,)
            ).fetchone()
            email = self._stored_email(conn, proposal.email_id)
            self._after_read("decide_proposal")
            existing = _load(Activity, activity_row[0]) if activity_row else None
            outcome = proposal.decide(
                status, actor, email=email, existing_activity=existing, at=utcnow()
            )
            if outcome.changed:
                self._put_proposal(conn, outcome.proposal)
                if outcome.activity is not None and existing is None:
                    conn.execute(
                        "INSERT INTO activities (id, doc) VALUES (?,?)",
                        (outcome.activity.id, _dump(outcome.activity)),
                    )
            return outcome

    def list_proposals(
        self,
        *,
        status: ProposalStatus | None = None,
        investor_id: str | None = None,
        account_id: str | None = None,
        created_from: datetime | None = None,
        created_to: datetime | None = None,
        limit: int = 50,
        page_token: str = "",
    ) -> Page[Proposal]:
        check_limit(limit)
        clauses: list[str] = []
        params: list[object] = []
        if status is not None:
            clauses.append("status = ?")
            params.append(status.value)
        if investor_id is not None:
            clauses.append("investor_id = ?")
            params.append(investor_id)
        if account_id is not None:
            clauses.append("account_id = ?")
            params.append(account_id)
        lower, upper = proposal_window_keys(created_from, created_to, page_token)
        if lower is not None:
            clauses.append("sort_key >= ?")
            params.append(lower)
        if upper is not None:
            clauses.append("sort_key < ?")
            params.append(upper)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._many(
            Proposal,
            f"SELECT doc FROM proposals {where} ORDER BY sort_key DESC LIMIT ?",  # noqa: S608
            (*params, limit + 1),
        )
        items = rows[:limit]
        more = len(rows) > limit
        return Page(items, encode_page_token(items[-1].sort_key) if more else "")

    def get_activity(self, activity_id: str) -> Activity | None:
        return self._one(Activity, "SELECT doc FROM activities WHERE id = ?", (activity_id,))

    # -- settings, guards, audit --------------------------------------------------------------

    def get_setting(self, key: str) -> Any | None:
        row = (
            self._connection()
            .execute("SELECT value FROM app_settings WHERE key = ?", (key,))
            .fetchone()
        )
        return json.loads(row[0]) if row else None

    def set_setting(self, key: str, value: Any) -> None:
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO app_settings (key, value) VALUES (?,?)",
                (key, json.dumps(value)),
            )

    def update_setting(self, key: str, change: Callable[[Any | None], Any]) -> Any:
        with self._write() as conn:
            row = conn.execute("SELECT value FROM app_settings WHERE key = ?", (key,)).fetchone()
            self._after_read("update_setting")
            value = change(json.loads(row[0]) if row else None)
            conn.execute(
                "INSERT OR REPLACE INTO app_settings (key, value) VALUES (?,?)",
                (key, json.dumps(value)),
            )
            return value

    def create_guard(self, guard: Guard) -> bool:
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO guards (id, doc) VALUES (?,?)", (guard.id, _dump(guard))
            )
            return cursor.rowcount == 1

    def get_guard(self, guard_id: str) -> Guard | None:
        return self._one(Guard, "SELECT doc FROM guards WHERE id = ?", (guard_id,))

    def update_guard(self, guard_id: str, change: Callable[[Guard], Guard | None]) -> Guard | None:
        with self._write() as conn:
            row = conn.execute("SELECT doc FROM guards WHERE id = ?", (guard_id,)).fetchone()
            if row is None:
                return None
            current = _load(Guard, row[0])
            self._after_read("update_guard")
            updated = change(current.model_copy(deep=True))
            if updated is None:
                return current
            if updated.id != guard_id:
                raise ValueError(f"update_guard cannot rename {guard_id!r} to {updated.id!r}")
            conn.execute("UPDATE guards SET doc = ? WHERE id = ?", (_dump(updated), guard_id))
            return updated

    def append_audit(self, entry: AuditEntry) -> None:
        with self._write() as conn:
            inserted = conn.execute(
                "INSERT OR IGNORE INTO audit (id, target, at, doc) VALUES (?,?,?,?)",
                (entry.id, entry.target, time_key(entry.at), _dump(entry)),
            ).rowcount
        if not inserted:
            raise ConflictError("audit entry already recorded", audit_id=entry.id)

    def list_audit(self, *, target: str | None = None, limit: int = 100) -> list[AuditEntry]:
        check_limit(limit)
        if target is None:
            return self._many(
                AuditEntry, "SELECT doc FROM audit ORDER BY at DESC, id DESC LIMIT ?", (limit,)
            )
        return self._many(
            AuditEntry,
            "SELECT doc FROM audit WHERE target = ? ORDER BY at DESC, id DESC LIMIT ?",
            (target, limit),
        )
