-- A charger created by auto-registration at its first handshake is pending until an operator
-- approves it (or it authenticated with credentials): it gets no local list and its id tokens
-- are answered as unknown. Every row stored before this migration was registered by an
-- operator or already trusted, so it is not pending.
ALTER TABLE chargers ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;
