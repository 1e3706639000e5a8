-- Schema of the PostgreSQL store: the same tables and rules as the SQLite migrations in
-- ../migrations/ reach after all of them, written once for PostgreSQL.
-- Rows replayed in insertion order (scopes, modules, principals, roles, assignments, API tokens)
-- carry a `seq` identity column, which an upsert keeps. Ids that are listed in order (charger
-- ids, id tokens) use the "C" collation: byte order, as SQLite compares text, whatever locale
-- the database was created with.

-- Role-engine state ---------------------------------------------------------------------------

-- `parent` is not a foreign key: the engine's root scope is implicit and never stored.
CREATE TABLE scopes (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id     TEXT PRIMARY KEY,
    kind   TEXT NOT NULL,
    parent TEXT,
    name   TEXT
);

CREATE TABLE scope_modules (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    scope   TEXT NOT NULL,
    module  TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    PRIMARY KEY (scope, module)
);

CREATE TABLE principals (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    home_scope TEXT NOT NULL,
    name       TEXT NOT NULL,
    blocked    BOOLEAN NOT NULL DEFAULT FALSE
);

-- Ids of deleted principals. The audit log keeps a deleted principal's history under its id,
-- so the id is never given to another principal, who would otherwise inherit that history.
CREATE TABLE retired_principal_ids (
    id TEXT PRIMARY KEY
);

-- `permissions` is a JSON array of permission ids.
CREATE TABLE roles (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id          TEXT PRIMARY KEY,
    label       TEXT NOT NULL,
    permissions JSONB NOT NULL
);

-- `role` is not a foreign key: built-in roles come from the preset and are never stored.
CREATE TABLE assignments (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    principal TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    role      TEXT NOT NULL,
    scope     TEXT NOT NULL,
    PRIMARY KEY (principal, role, scope)
);

-- Chargers ------------------------------------------------------------------------------------

-- `pending`: auto-registered at its first handshake and not yet approved by an operator.
CREATE TABLE chargers (
    id               TEXT COLLATE "C" PRIMARY KEY,
    scope            TEXT NOT NULL,
    password_hash    TEXT,
    security_profile SMALLINT NOT NULL,
    pending          BOOLEAN NOT NULL DEFAULT FALSE
);

-- Boot history is kept even for chargers that are not (or no longer) registered.
CREATE TABLE charger_boots (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    charger TEXT NOT NULL,
    kind    TEXT NOT NULL,
    at      TEXT NOT NULL,
    info    JSONB NOT NULL
);
CREATE INDEX security_events_by_charger ON security_events (charger, id);

-- Credentials ---------------------------------------------------------------------------------

-- Only hashes of operator API tokens are stored; the UNIQUE constraint is the lookup index.
CREATE TABLE api_tokens (
    seq        BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id         TEXT PRIMARY KEY,
    principal  TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX api_tokens_by_principal ON api_tokens (principal, seq);

-- Id tokens are stored in their one form (trimmed, ASCII letters upper case: the rule is
-- voltgate_ocpp::normalize_id_token, applied by the gateway before it writes). `token_type` is
-- the OCPP 2.0.1 IdTokenEnumType; NULL matches any presented type.
CREATE TABLE id_tokens (
    id_token   TEXT COLLATE "C" PRIMARY KEY,
    principal  TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    blocked    BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at TEXT,
    group_id   TEXT,
    token_type TEXT
);
CREATE INDEX id_tokens_by_principal ON id_tokens (principal, id_token);

-- What the gateway last installed in each charger's local authorisation list. `charger` is
-- not a foreign key: the list outlives a charger record that is replaced.
CREATE TABLE local_lists (
    charger    TEXT PRIMARY KEY,
    version    BIGINT NOT NULL,
    entries    JSONB NOT NULL,
    updated_at TEXT NOT NULL
);

-- Charging sessions ---------------------------------------------------------------------------

-- An id is never reused, because chargers quote it back (OCPP 1.6 transactionId).
-- `principal` is not a foreign key: billing history outlives a deleted principal.
CREATE TABLE transactions (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    charger     TEXT NOT NULL,
    key         TEXT NOT NULL,
    connector   BIGINT NOT NULL,
    id_token    TEXT,
    principal   TEXT,
    meter_start DOUBLE PRECISION,
    meter_stop  DOUBLE PRECISION,
    started_at  TEXT NOT NULL,
    stopped_at  TEXT,
    stop_reason TEXT,
    UNIQUE (charger, key)
);
CREATE INDEX transactions_by_charger ON transactions (charger, id);
CREATE INDEX transactions_by_principal ON transactions (principal, id) WHERE principal IS NOT NULL;
CREATE INDEX transactions_active ON transactions (id) WHERE stopped_at IS NULL;

-- `sample` is the JSON the charger sent; `seq` (when given) makes a resent batch a no-op. OCPP
-- 1.6 sends no sequence number: then the same sample at the same time is the same reading and
-- kept once (compared by digest, so a large sample still fits the index).
CREATE TABLE meter_values (
    id             BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id BIGINT NOT NULL REFERENCES transactions (id) ON DELETE CASCADE,
    seq            BIGINT,
    sample         JSONB NOT NULL,
    at             TEXT NOT NULL,
    UNIQUE (transaction_id, seq)
);
CREATE UNIQUE INDEX meter_values_sample ON meter_values (transaction_id, md5(sample::text), at)
WHERE seq IS NULL;

-- Audit log -----------------------------------------------------------------------------------

CREATE TABLE audit (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         TEXT NOT NULL,
    principal  TEXT NOT NULL,
    action     TEXT NOT NULL,
    resource   TEXT NOT NULL,
    allowed    BOOLEAN NOT NULL,
    reason     TEXT NOT NULL,
    outcome    TEXT,
    request_id TEXT
);

-- The log is append-only: only the outcome of a record may be filled in later.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only';
END;
$$;

CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
FOR EACH ROW EXECUTE FUNCTION audit_append_only();

CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

CREATE TRIGGER audit_no_rewrite
BEFORE UPDATE OF id, at, principal, action, resource, allowed, reason, request_id ON audit
FOR EACH ROW EXECUTE FUNCTION audit_append_only();
