//! Migrations, one list per backend, numbered on one scale: a version means the same tables
//! and columns on both. PostgreSQL support arrived with version 3, so its first migration
//! creates everything that SQLite built in three steps.
//!
//! Migrations run in the store's write transaction (see `Store::open`), so two processes
//! opening a new database at once cannot both create it, and a failed migration leaves
//! the previous version intact.

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 6;

/// `PRAGMA application_id` of a SQLite store ("WACH"); PostgreSQL stores say so in
/// `wachter_meta`.
pub(crate) const APPLICATION_ID: i64 = 0x5741_4348;

pub(crate) struct Migration {
    pub version: i64,
    pub sql: &'static str,
}

pub(crate) const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        sql: "
CREATE TABLE scans (
    id INTEGER PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    seed INTEGER NOT NULL,
    shard TEXT NOT NULL,
    ports TEXT NOT NULL,
    check_name TEXT NOT NULL,
    scope TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    services INTEGER NOT NULL DEFAULT 0,
    summary TEXT
);
CREATE TABLE services (
    id INTEGER PRIMARY KEY,
    ip TEXT NOT NULL,
    port INTEGER NOT NULL,
    hostname TEXT NOT NULL DEFAULT '',
    UNIQUE (ip, port, hostname)
);
CREATE TABLE certificates (
    sha256 TEXT PRIMARY KEY,
    der BLOB NOT NULL,
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    not_after TEXT,
    sans TEXT NOT NULL,
    first_seen TEXT NOT NULL
);
CREATE TABLE observations (
    id INTEGER PRIMARY KEY,
    scan_id INTEGER NOT NULL REFERENCES scans (id),
    service_id INTEGER NOT NULL REFERENCES services (id),
    observed_at TEXT NOT NULL,
    status TEXT NOT NULL,
    protocol TEXT,
    cert_sha256 TEXT,
    record TEXT NOT NULL
);
CREATE INDEX observations_by_scan ON observations (scan_id);
CREATE INDEX observations_by_service ON observations (service_id);
CREATE TABLE findings (
    id INTEGER PRIMARY KEY,
    service_id INTEGER NOT NULL REFERENCES services (id),
    cve TEXT NOT NULL,
    state TEXT NOT NULL,
    basis TEXT NOT NULL,
    detail TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_scan_id INTEGER NOT NULL REFERENCES scans (id),
    UNIQUE (service_id, cve)
);
CREATE TABLE finding_history (
    id INTEGER PRIMARY KEY,
    finding_id INTEGER NOT NULL REFERENCES findings (id),
    scan_id INTEGER NOT NULL REFERENCES scans (id),
    at TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL
);
PRAGMA application_id = 1463894856;
",
    },
    // Resume: where a scan stands, how to run it again, and which target position each
    // observation belongs to.
    Migration {
        version: 2,
        sql: "
ALTER TABLE scans ADD COLUMN checkpoint TEXT;
ALTER TABLE scans ADD COLUMN resume TEXT;
ALTER TABLE observations ADD COLUMN position INTEGER;
",
    },
    // Room for the constituency (organisations own services), and an index the
    // state-at-scan query needs once histories grow.
    Migration {
        version: 3,
        sql: "
CREATE TABLE organisations (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    sector TEXT,
    tlp TEXT,
    notes TEXT
);
ALTER TABLE services ADD COLUMN organisation_id INTEGER REFERENCES organisations (id);
CREATE INDEX finding_history_by_finding ON finding_history (finding_id, scan_id);
",
    },
    // The constituency: organisations with their networks, domains and contacts; registry
    // networks imported from RIPE split files; and how each service was attributed.
    Migration {
        version: 4,
        sql: "
ALTER TABLE organisations ADD COLUMN asns TEXT NOT NULL DEFAULT '[]';
CREATE TABLE org_networks (
    organisation_id INTEGER NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    network TEXT NOT NULL,
    UNIQUE (organisation_id, network)
);
CREATE TABLE org_domains (
    organisation_id INTEGER NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    UNIQUE (organisation_id, domain)
);
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    organisation_id INTEGER NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    language TEXT,
    name TEXT,
    source TEXT NOT NULL
);
CREATE INDEX contacts_by_organisation ON contacts (organisation_id);
CREATE TABLE registry_imports (
    id INTEGER PRIMARY KEY,
    registry TEXT NOT NULL,
    files TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    networks INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL
);
CREATE TABLE registry_networks (
    id INTEGER PRIMARY KEY,
    import_id INTEGER NOT NULL REFERENCES registry_imports (id) ON DELETE CASCADE,
    network TEXT NOT NULL,
    netname TEXT NOT NULL,
    country TEXT,
    org_handle TEXT,
    org_name TEXT,
    abuse_mailboxes TEXT NOT NULL,
    abuse_source TEXT NOT NULL
);
CREATE INDEX registry_networks_by_import ON registry_networks (import_id);
CREATE TABLE attributions (
    service_id INTEGER PRIMARY KEY REFERENCES services (id),
    organisation_id INTEGER REFERENCES organisations (id) ON DELETE SET NULL,
    method TEXT NOT NULL,
    matched TEXT,
    also_matched INTEGER NOT NULL DEFAULT 0,
    asn INTEGER,
    holder TEXT,
    country TEXT,
    registry_network TEXT,
    abuse_mailboxes TEXT NOT NULL DEFAULT '[]',
    detail TEXT NOT NULL DEFAULT '{}',
    attributed_at TEXT NOT NULL
);
CREATE INDEX attributions_by_organisation ON attributions (organisation_id);
",
    },
    // Notifications: campaigns, the outbox (each message exactly as it is sent), and which
    // findings each message told, so a repeat interval holds across runs and restarts.
    Migration {
        version: 5,
        sql: "
CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    cve TEXT NOT NULL,
    created_at TEXT NOT NULL,
    tlp TEXT NOT NULL,
    language TEXT NOT NULL,
    params TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
    ticket TEXT NOT NULL UNIQUE,
    organisation_id INTEGER REFERENCES organisations (id) ON DELETE SET NULL,
    recipient_name TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    language TEXT NOT NULL,
    round INTEGER NOT NULL,
    message_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT,
    last_error TEXT,
    smtp_response TEXT,
    sent_at TEXT,
    created_at TEXT NOT NULL
);
-- The formatted message, apart: sending updates a message's state twice, and a row that
-- held the body would be rewritten whole each time.
CREATE TABLE message_bodies (
    message_id INTEGER PRIMARY KEY REFERENCES messages (id),
    message BLOB NOT NULL
);
CREATE INDEX messages_due ON messages (state, next_attempt_at);
CREATE INDEX messages_by_campaign ON messages (campaign_id);
CREATE TABLE notifications (
    message_id INTEGER NOT NULL REFERENCES messages (id),
    finding_id INTEGER NOT NULL REFERENCES findings (id),
    finding_state TEXT NOT NULL,
    PRIMARY KEY (message_id, finding_id)
);
CREATE INDEX notifications_by_finding ON notifications (finding_id);
CREATE TABLE ticket_numbers (
    id INTEGER PRIMARY KEY,
    reserved_at TEXT NOT NULL
);
",
    },
    // The dashboard: people who may read the case (Argon2id password hashes), their
    // sessions and API tokens (only SHA-256 hashes of the secrets are kept), triage reports
    // brought in from owners, each scan's standing per CVE kept when the scan ends (so the
    // overview never re-reads every observation), and indexes for the filtered host list.
    Migration {
        version: 6,
        sql: "
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE TABLE triage_reports (
    id INTEGER PRIMARY KEY,
    imported_at TEXT NOT NULL,
    label TEXT NOT NULL,
    organisation_id INTEGER REFERENCES organisations (id) ON DELETE SET NULL,
    service_id INTEGER REFERENCES services (id),
    verdict TEXT NOT NULL,
    hits INTEGER NOT NULL,
    report TEXT NOT NULL
);
CREATE TABLE trend_points (
    scan_id INTEGER NOT NULL REFERENCES scans (id),
    cve TEXT NOT NULL,
    started_at TEXT NOT NULL,
    vulnerable INTEGER NOT NULL,
    mitigated INTEGER NOT NULL,
    patched INTEGER NOT NULL,
    unknown INTEGER NOT NULL,
    unreachable INTEGER NOT NULL,
    not_rescanned INTEGER NOT NULL,
    PRIMARY KEY (scan_id, cve)
);
CREATE INDEX findings_by_state ON findings (state, cve);
CREATE INDEX findings_by_last_seen ON findings (last_seen);
CREATE INDEX findings_by_first_seen ON findings (first_seen, id);
",
    },
];

pub(crate) const POSTGRES: &[Migration] = &[
    Migration {
        version: 3,
        sql: "
CREATE TABLE wachter_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO wachter_meta (key, value) VALUES ('application', 'wachter');
CREATE TABLE scans (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    seed BIGINT NOT NULL,
    shard TEXT NOT NULL,
    ports TEXT NOT NULL,
    check_name TEXT NOT NULL,
    scope TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    services BIGINT NOT NULL DEFAULT 0,
    summary TEXT,
    checkpoint TEXT,
    resume TEXT
);
CREATE TABLE organisations (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    sector TEXT,
    tlp TEXT,
    notes TEXT
);
CREATE TABLE services (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    ip TEXT NOT NULL,
    port BIGINT NOT NULL,
    hostname TEXT NOT NULL DEFAULT '',
    organisation_id BIGINT REFERENCES organisations (id),
    UNIQUE (ip, port, hostname)
);
CREATE TABLE certificates (
    sha256 TEXT PRIMARY KEY,
    der BYTEA NOT NULL,
    subject TEXT NOT NULL,
    issuer TEXT NOT NULL,
    not_after TEXT,
    sans TEXT NOT NULL,
    first_seen TEXT NOT NULL
);
CREATE TABLE observations (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    scan_id BIGINT NOT NULL REFERENCES scans (id),
    service_id BIGINT NOT NULL REFERENCES services (id),
    observed_at TEXT NOT NULL,
    status TEXT NOT NULL,
    protocol TEXT,
    cert_sha256 TEXT,
    record TEXT NOT NULL,
    position BIGINT
);
CREATE INDEX observations_by_scan ON observations (scan_id);
CREATE INDEX observations_by_service ON observations (service_id);
CREATE TABLE findings (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    service_id BIGINT NOT NULL REFERENCES services (id),
    cve TEXT NOT NULL,
    state TEXT NOT NULL,
    basis TEXT NOT NULL,
    detail TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    last_scan_id BIGINT NOT NULL REFERENCES scans (id),
    UNIQUE (service_id, cve)
);
CREATE TABLE finding_history (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    finding_id BIGINT NOT NULL REFERENCES findings (id),
    scan_id BIGINT NOT NULL REFERENCES scans (id),
    at TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT NOT NULL
);
CREATE INDEX finding_history_by_finding ON finding_history (finding_id, scan_id);
",
    },
    Migration {
        version: 4,
        sql: "
ALTER TABLE organisations ADD COLUMN asns TEXT NOT NULL DEFAULT '[]';
CREATE TABLE org_networks (
    organisation_id BIGINT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    network TEXT NOT NULL,
    UNIQUE (organisation_id, network)
);
CREATE TABLE org_domains (
    organisation_id BIGINT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    domain TEXT NOT NULL,
    UNIQUE (organisation_id, domain)
);
CREATE TABLE contacts (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    organisation_id BIGINT NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    language TEXT,
    name TEXT,
    source TEXT NOT NULL
);
CREATE INDEX contacts_by_organisation ON contacts (organisation_id);
CREATE TABLE registry_imports (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    registry TEXT NOT NULL,
    files TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    networks BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL
);
CREATE TABLE registry_networks (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    import_id BIGINT NOT NULL REFERENCES registry_imports (id) ON DELETE CASCADE,
    network TEXT NOT NULL,
    netname TEXT NOT NULL,
    country TEXT,
    org_handle TEXT,
    org_name TEXT,
    abuse_mailboxes TEXT NOT NULL,
    abuse_source TEXT NOT NULL
);
CREATE INDEX registry_networks_by_import ON registry_networks (import_id);
CREATE TABLE attributions (
    service_id BIGINT PRIMARY KEY REFERENCES services (id),
    organisation_id BIGINT REFERENCES organisations (id) ON DELETE SET NULL,
    method TEXT NOT NULL,
    matched TEXT,
    also_matched BIGINT NOT NULL DEFAULT 0,
    asn BIGINT,
    holder TEXT,
    country TEXT,
    registry_network TEXT,
    abuse_mailboxes TEXT NOT NULL DEFAULT '[]',
    detail TEXT NOT NULL DEFAULT '{}',
    attributed_at TEXT NOT NULL
);
CREATE INDEX attributions_by_organisation ON attributions (organisation_id);
",
    },
    // Notifications: campaigns, the outbox (each message exactly as it is sent), and which
    // findings each message told, so a repeat interval holds across runs and restarts.
    Migration {
        version: 5,
        sql: "
CREATE TABLE campaigns (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL,
    cve TEXT NOT NULL,
    created_at TEXT NOT NULL,
    tlp TEXT NOT NULL,
    language TEXT NOT NULL,
    params TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE TABLE messages (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
    ticket TEXT NOT NULL UNIQUE,
    organisation_id BIGINT REFERENCES organisations (id) ON DELETE SET NULL,
    recipient_name TEXT NOT NULL,
    mail_from TEXT NOT NULL,
    recipients TEXT NOT NULL,
    subject TEXT NOT NULL,
    language TEXT NOT NULL,
    round BIGINT NOT NULL,
    message_id TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT,
    last_error TEXT,
    smtp_response TEXT,
    sent_at TEXT,
    created_at TEXT NOT NULL
);
-- The formatted message, apart: sending updates a message's state twice, and a row that
-- held the body would be rewritten whole each time.
CREATE TABLE message_bodies (
    message_id BIGINT PRIMARY KEY REFERENCES messages (id),
    message BYTEA NOT NULL
);
CREATE INDEX messages_due ON messages (state, next_attempt_at);
CREATE INDEX messages_by_campaign ON messages (campaign_id);
CREATE TABLE notifications (
    message_id BIGINT NOT NULL REFERENCES messages (id),
    finding_id BIGINT NOT NULL REFERENCES findings (id),
    finding_state TEXT NOT NULL,
    PRIMARY KEY (message_id, finding_id)
);
CREATE INDEX notifications_by_finding ON notifications (finding_id);
CREATE TABLE ticket_numbers (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    reserved_at TEXT NOT NULL
);
",
    },
    // The dashboard: people who may read the case (Argon2id password hashes), their
    // sessions and API tokens (only SHA-256 hashes of the secrets are kept), triage reports
    // brought in from owners, each scan's standing per CVE kept when the scan ends (so the
    // overview never re-reads every observation), and indexes for the filtered host list.
    Migration {
        version: 6,
        sql: "
CREATE TABLE users (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL,
    disabled BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE TABLE api_tokens (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE TABLE triage_reports (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    imported_at TEXT NOT NULL,
    label TEXT NOT NULL,
    organisation_id BIGINT REFERENCES organisations (id) ON DELETE SET NULL,
    service_id BIGINT REFERENCES services (id),
    verdict TEXT NOT NULL,
    hits BIGINT NOT NULL,
    report TEXT NOT NULL
);
CREATE TABLE trend_points (
    scan_id BIGINT NOT NULL REFERENCES scans (id),
    cve TEXT NOT NULL,
    started_at TEXT NOT NULL,
    vulnerable BIGINT NOT NULL,
    mitigated BIGINT NOT NULL,
    patched BIGINT NOT NULL,
    unknown BIGINT NOT NULL,
    unreachable BIGINT NOT NULL,
    not_rescanned BIGINT NOT NULL,
    PRIMARY KEY (scan_id, cve)
);
CREATE INDEX findings_by_state ON findings (state, cve);
CREATE INDEX findings_by_last_seen ON findings (last_seen);
CREATE INDEX findings_by_first_seen ON findings (first_seen, id);
",
    },
];
