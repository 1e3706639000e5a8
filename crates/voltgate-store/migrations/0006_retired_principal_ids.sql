-- Ids of deleted principals. The audit log keeps a deleted principal's history under its id,
-- so the id is never given to another principal, who would otherwise inherit that history.
CREATE TABLE retired_principal_ids (
    id TEXT PRIMARY KEY NOT NULL
);
