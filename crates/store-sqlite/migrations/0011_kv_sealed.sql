-- Key-value values sealed under their namespace's data key: the key's version, NULL when clear.
ALTER TABLE kv_entries ADD COLUMN sealed INTEGER;
