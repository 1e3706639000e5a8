-- OCPP 2.0.1 id tokens carry a type (IdTokenEnumType: ISO14443, eMAID, KeyCode, ...). A stored
-- type restricts the token to chargers presenting that type; NULL (every row stored before this
-- migration) keeps the old behaviour of matching by text alone.
ALTER TABLE id_tokens ADD COLUMN token_type TEXT;
