-- Card texts are unique per tenant, not across the gateway: two tenants may each register
-- `04A1B2C3`, and a charger finds the one of its own tenant (the rule lives in the role
-- engine, voltgate_policy's card namespaces; the store only keeps the rows). A row is
-- therefore one principal's card: the key becomes (id_token, principal). SQLite cannot change
-- a primary key in place, so the table is rebuilt; every row is kept as it was.
CREATE TABLE id_tokens_per_tenant (
    id_token   TEXT NOT NULL,
    principal  TEXT NOT NULL REFERENCES principals (id) ON DELETE CASCADE,
    blocked    INTEGER NOT NULL DEFAULT 0,
    expires_at TEXT,
    group_id   TEXT,
    token_type TEXT,
    PRIMARY KEY (id_token, principal)
);
INSERT INTO id_tokens_per_tenant (id_token, principal, blocked, expires_at, group_id, token_type)
SELECT id_token, principal, blocked, expires_at, group_id, token_type FROM id_tokens;
DROP TABLE id_tokens;
ALTER TABLE id_tokens_per_tenant RENAME TO id_tokens;
CREATE INDEX id_tokens_by_principal ON id_tokens (principal);
