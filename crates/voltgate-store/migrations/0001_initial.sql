-- Initial schema of the Voltgate store.
-- Rows that are replayed in insertion order (scopes, modules, principals, roles, assignments)
-- are ordered by their implicit rowid, which an upsert keeps.

-- Role-engine state ---------------------------------------------------------------------------

-- `parent` is not a foreign key: the engine's root scope is implicit and never stored.
CREATE TABLE scopes (
    id     TEXT PRIMARY KEY NOT NULL,
    kind   TEXT NOT NULL,
    parent TEXT,
    name   TEXT
);

CREATE TABLE scope_modules (
    scope   TEXT NOT NULL,
    module  TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    PRIMARY KEY (scope, module)
);

CREATE TABLE principals (
    id         TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    home_scope TEXT NOT NULL,
    name       TEXT NOT NULL,
    blocked    INTEGER NOT NULL DEFAULT 0
);

-- `permissions` is a JSON array of permission ids.
CREATE TABLE roles (
    id          TEXT PRIMARY KEY NOT NULL,
    label       TEXT NOT NULL,
    permissions TEXT NOT NULL
);

-- `role` is not a foreign key: built-in roles come from the preset and are never stored.
CREATE TABLE assignments (
    principal TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    role      TEXT NOT NULL,
    scope     TEXT NOT NULL,
    PRIMARY KEY (principal, role, scope)
);

-- Chargers ------------------------------------------------------------------------------------

CREATE TABLE chargers (
    id               TEXT PRIMARY KEY NOT NULL,
    scope            TEXT NOT NULL,
    password_hash    TEXT,
    security_profile INTEGER NOT NULL
);

-- Boot history is kept even for chargers that are not (or no longer) registered.
CREATE TABLE charger_boots (
    id           INTEGER PRIMARY KEY,
    charger      TEXT NOT NULL,
    vendor       TEXT NOT NULL,
    model        TEXT NOT NULL,
    serial       TEXT,
    firmware     TEXT,
    ocpp_version TEXT NOT NULL,
    at           TEXT NOT NULL
);
CREATE INDEX charger_boots_by_charger ON charger_boots (charger, id);

CREATE TABLE security_events (
    id      INTEGER PRIMARY KEY,
    charger TEXT NOT NULL,
    kind    TEXT NOT NULL,
    at      TEXT NOT NULL,
    info    TEXT NOT NULL
);
CREATE INDEX security_events_by_charger ON security_events (charger, id);

-- Credentials ---------------------------------------------------------------------------------

-- Only hashes of operator API tokens are stored; the UNIQUE constraint is the lookup index.
CREATE TABLE api_tokens (
    id         TEXT PRIMARY KEY NOT NULL,
    principal  TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX api_tokens_by_principal ON api_tokens (principal);

CREATE TABLE id_tokens (
    id_token   TEXT PRIMARY KEY NOT NULL,
    principal  TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    blocked    INTEGER NOT NULL DEFAULT 0,
    expires_at TEXT,
    group_id   TEXT
);
CREATE INDEX id_tokens_by_principal ON id_tokens (principal);

-- Charging sessions ---------------------------------------------------------------------------

-- AUTOINCREMENT: an id is never reused, because chargers quote it back (OCPP 1.6 transactionId).
-- `principal` is not a foreign key: billing history outlives a deleted principal.
CREATE TABLE transactions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    charger     TEXT NOT NULL,
    key         TEXT NOT NULL,
    connector   INTEGER NOT NULL,
    id_token    TEXT,
    principal   TEXT,
    meter_start REAL,
    meter_stop  REAL,
    started_at  TEXT NOT NULL,
    stopped_at  TEXT,
    stop_reason TEXT,
    UNIQUE (charger, key)
);
CREATE INDEX transactions_by_charger ON transactions (charger, id);
CREATE INDEX transactions_by_principal ON transactions (principal, id) WHERE principal IS NOT NULL;
CREATE INDEX transactions_active ON transactions (id) WHERE stopped_at IS NULL;

-- `sample` is the JSON the charger sent; `seq` (when given) makes a resent batch a no-op.
CREATE TABLE meter_values (
    id             INTEGER PRIMARY KEY,
    transaction_id INTEGER NOT NULL REFERENCES transactions (id) ON DELETE CASCADE,
    seq            INTEGER,
    sample         TEXT NOT NULL,
    at             TEXT NOT NULL,
    UNIQUE (transaction_id, seq)
);

-- Audit log -----------------------------------------------------------------------------------

-- Newest-first reads walk the INTEGER PRIMARY KEY backwards, so no extra index is needed.
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT NOT NULL,
    principal  TEXT NOT NULL,
    action     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    allowed    INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    outcome    TEXT,
    request_id TEXT
);

-- The log is append-only: only the outcome of a record may be filled in later.
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;

CREATE TRIGGER audit_no_rewrite
BEFORE UPDATE OF id, at, principal, action, resource, allowed, reason, request_id ON audit
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;
