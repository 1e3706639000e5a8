-- Card texts are unique per tenant, not across the gateway: two tenants may each register
-- `04A1B2C3`, and a charger finds the one of its own tenant (the rule lives in the role
-- engine, voltgate_policy's card namespaces; the store only keeps the rows). A row is
-- therefore one principal's card: the key becomes (id_token, principal); every row is kept.
ALTER TABLE id_tokens DROP CONSTRAINT id_tokens_pkey;
ALTER TABLE id_tokens ADD PRIMARY KEY (id_token, principal);
