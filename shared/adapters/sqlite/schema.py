"""The SQLite schema and its migrations: ``MIGRATIONS`` (SQL, one entry per version) and the
Python data steps that run right after a version's SQL (``_DATA_MIGRATIONS``).
"""

from __future__ import annotations

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
    # The admin lists (issue 13, shared.domain.listing_keys): name and last-contact keys,
    # contacts' domains (crm_keys kind contact_domain), activities and audit by their filters.
    # The keys of existing rows need Python (casefold, time_key): _backfill_listing_keys.
    """
    ALTER TABLE organizations ADD COLUMN listing_name TEXT NOT NULL DEFAULT '';
    CREATE INDEX organizations_by_listing_name ON organizations (listing_name);
    ALTER TABLE contacts ADD COLUMN listing_name TEXT NOT NULL DEFAULT '';
    CREATE INDEX contacts_by_listing_name ON contacts (listing_name);
    ALTER TABLE investors ADD COLUMN listing_name TEXT NOT NULL DEFAULT '';
    ALTER TABLE investors ADD COLUMN last_contact_key TEXT NOT NULL DEFAULT '';
    CREATE INDEX investors_by_listing_name ON investors (listing_name);
    CREATE INDEX investors_by_last_contact ON investors (last_contact_key);
    ALTER TABLE activities ADD COLUMN investor_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE activities ADD COLUMN contact_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE activities ADD COLUMN account_id TEXT NOT NULL DEFAULT '';
    ALTER TABLE activities ADD COLUMN sort_key TEXT NOT NULL DEFAULT '';
    CREATE INDEX activities_by_key ON activities (sort_key);
    CREATE INDEX activities_by_investor ON activities (investor_id, sort_key);
    CREATE INDEX activities_by_contact ON activities (contact_id, sort_key);
    CREATE INDEX activities_by_account ON activities (account_id, sort_key);
    ALTER TABLE audit ADD COLUMN actor TEXT NOT NULL DEFAULT '';
    ALTER TABLE audit ADD COLUMN action TEXT NOT NULL DEFAULT '';
    ALTER TABLE audit ADD COLUMN sort_key TEXT NOT NULL DEFAULT '';
    UPDATE audit SET actor = COALESCE(json_extract(doc, '$.actor'), ''),
        action = COALESCE(json_extract(doc, '$.action'), ''), sort_key = at || '|' || id;
    CREATE INDEX audit_by_key ON audit (sort_key);
    CREATE INDEX audit_by_actor_key ON audit (actor, sort_key);
    CREATE INDEX audit_by_action_key ON audit (action, sort_key);
    CREATE INDEX audit_by_target_key ON audit (target, sort_key);
    """,
    # A mailbox's sightings by Gmail thread (the email detail's "rest of the thread").
    """
    ALTER TABLE sightings ADD COLUMN thread_id TEXT NOT NULL DEFAULT '';
    UPDATE sightings SET thread_id = COALESCE(json_extract(doc, '$.thread_id'), '');
    CREATE INDEX sightings_by_thread ON sightings (account_id, thread_id);
    """,
    # Relationship intelligence (SqliteRelationships): one contribution row per (email,
    # investor), written with the email, its contacts in a side table, and the daily scores.
    # Mail stored before this version gets its rows from `shared.cli recompute-relationships`.
    """
    CREATE TABLE relationship_contributions (
        id TEXT PRIMARY KEY, email_id TEXT NOT NULL, investor_id TEXT NOT NULL,
        at_key TEXT NOT NULL, doc TEXT NOT NULL);
    CREATE INDEX relationship_contributions_by_email ON relationship_contributions (email_id);
    CREATE INDEX relationship_contributions_by_investor
        ON relationship_contributions (investor_id, at_key);
    CREATE TABLE relationship_contribution_contacts (
        contact_id TEXT NOT NULL, at_key TEXT NOT NULL, contribution_id TEXT NOT NULL,
        PRIMARY KEY (contact_id, at_key, contribution_id)) WITHOUT ROWID;
    CREATE INDEX relationship_contribution_contacts_by_row
        ON relationship_contribution_contacts (contribution_id);
    CREATE TABLE relationship_scores (
        id TEXT PRIMARY KEY, listed INTEGER NOT NULL, strength_sort TEXT NOT NULL,
        last_contact_sort TEXT NOT NULL, last_two_way_sort TEXT NOT NULL,
        drop_30d INTEGER NOT NULL, doc TEXT NOT NULL);
    CREATE INDEX relationship_scores_by_strength ON relationship_scores (listed, strength_sort);
    CREATE INDEX relationship_scores_by_last_contact
        ON relationship_scores (listed, last_contact_sort);
    CREATE INDEX relationship_scores_by_two_way ON relationship_scores (listed, last_two_way_sort);
    CREATE INDEX relationship_scores_by_drop ON relationship_scores (listed, drop_30d);
    """,
    # CRM records by their store stamp (time_key of updated_at): the digest re-reads the ones
    # changed since it took their names. Existing rows get theirs in the data step.
    """
    ALTER TABLE organizations ADD COLUMN updated_key TEXT NOT NULL DEFAULT '';
    CREATE INDEX organizations_by_updated ON organizations (updated_key);
    ALTER TABLE investors ADD COLUMN updated_key TEXT NOT NULL DEFAULT '';
    CREATE INDEX investors_by_updated ON investors (updated_key);
    ALTER TABLE contacts ADD COLUMN updated_key TEXT NOT NULL DEFAULT '';
    CREATE INDEX contacts_by_updated ON contacts (updated_key);
    """,
)
# Python steps run right after a version's SQL, in the same transaction: what SQL cannot
# compute (the panel's rows need the shared tokenizer).
_DATA_MIGRATIONS: dict[int, str] = {
    4: "_backfill_activity",
    6: "_backfill_listing_keys",
    9: "_backfill_crm_updated_keys",
}
