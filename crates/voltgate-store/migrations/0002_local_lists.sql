-- Local authorisation lists: what the gateway last installed on each charger (OCPP 1.6
-- SendLocalList / 2.0.1 SendLocalList), so a restart continues with differential updates
-- instead of sending every charger a full list again.
-- `entries` is the JSON the gateway chose (id token -> status, expiry, group); the store does
-- not interpret it. `charger` is not a foreign key: the list outlives a charger record that is
-- replaced, and a charger that never connects again costs one row.
CREATE TABLE local_lists (
    charger    TEXT PRIMARY KEY NOT NULL,
    version    INTEGER NOT NULL,
    entries    TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
