-- Id tokens are case-insensitive (OCPP CiString / identifierString): from this migration on
-- they are stored in one form, trimmed and with ASCII letters in upper case (the rule is
-- voltgate_ocpp::normalize_id_token), and looked up in that form, so `same01` finds `SAME01`.
-- Existing rows take that form here, with two exceptions that stay exactly as they were and
-- keep matching their exact text (the gateway tries the exact text before the stored form):
-- - rows the rule refuses (whitespace inside, characters outside printable ASCII);
-- - rows that collide: two rows with the same stored form belong to what may be different
--   accounts, and choosing one would hand a card to the other, so both are kept. An operator
--   resolves such a pair by deleting one of the rows (the API reaches each by its exact text).
-- Transactions and audit entries keep the text the charger sent: they are history.
UPDATE id_tokens
SET id_token = UPPER(TRIM(id_token))
WHERE id_token <> UPPER(TRIM(id_token))
  AND TRIM(id_token) <> ''
  AND INSTR(TRIM(id_token), ' ') = 0
  AND NOT (TRIM(id_token) GLOB '*[^!-~]*')
  AND NOT EXISTS (
      SELECT 1 FROM id_tokens AS other
      WHERE other.id_token <> id_tokens.id_token
        AND UPPER(TRIM(other.id_token)) = UPPER(TRIM(id_tokens.id_token))
  );
