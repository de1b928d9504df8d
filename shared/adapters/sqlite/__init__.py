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

from shared.adapters.sqlite.activity_index import SqliteActivityIndex
from shared.adapters.sqlite.base import SqliteHooks
from shared.adapters.sqlite.crm import SqliteCrm
from shared.adapters.sqlite.listings import SqliteListings
from shared.adapters.sqlite.mail import SqliteMail
from shared.adapters.sqlite.mailboxes import SqliteMailboxes
from shared.adapters.sqlite.proposals import SqliteProposals
from shared.adapters.sqlite.relationships import SqliteRelationships
from shared.adapters.sqlite.settings import SqliteSettings
from shared.adapters.sqlite.users import SqliteUsers

__all__ = ["SqliteHooks", "SqliteStore"]


class SqliteStore(
    SqliteUsers,
    SqliteMailboxes,
    SqliteCrm,
    SqliteMail,
    SqliteActivityIndex,
    SqliteProposals,
    SqliteSettings,
    SqliteListings,
    SqliteRelationships,
):
    """Store adapter over one SQLite file (path from settings): one mixin per area of the
    port (``shared/ports/``), over the connection helpers of ``base``."""
