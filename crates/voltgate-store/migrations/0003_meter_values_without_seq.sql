-- OCPP 1.6 meter values carry no sequence number (`seq` is NULL), and NULLs never clash in
-- UNIQUE (transaction_id, seq): a 1.6 MeterValues the charger resent (as it must when it got no
-- answer, e.g. across a gateway crash) was stored twice. The same sample for the same
-- transaction at the same time is the same reading, so it is kept once; earlier duplicates are
-- dropped first.
DELETE FROM meter_values
WHERE seq IS NULL
  AND id NOT IN (
      SELECT MIN(id) FROM meter_values WHERE seq IS NULL GROUP BY transaction_id, sample, at
  );

CREATE UNIQUE INDEX meter_values_sample ON meter_values (transaction_id, sample, at)
WHERE seq IS NULL;
