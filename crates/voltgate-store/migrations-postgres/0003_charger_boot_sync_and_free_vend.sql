-- How the gateway treats one charger after it boots, and whether it may free-vend:
-- post_boot_sync is `off` or a delay in seconds (`delay:<n>`); NULL is the default, `on`
-- (the local-list sync starts at once). free_vend accepts 2.0.1 NoAuthorization tokens.
ALTER TABLE chargers ADD COLUMN post_boot_sync TEXT;
ALTER TABLE chargers ADD COLUMN free_vend BOOLEAN NOT NULL DEFAULT FALSE;
