-- A charger's own schema tolerance (`strict` or `lenient`), set by an operator to make one
-- charger strict or to let one through; NULL follows the gateway's --schema-tolerance.
ALTER TABLE chargers ADD COLUMN schema_tolerance TEXT;
