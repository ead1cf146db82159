-- An idempotency key now points at the ledger entry it produced instead of keeping a copy of the
-- HTTP response: a replay is answered from the entry, so the store keeps no response bodies.
-- Existing keys are carried over with the newest entry recorded under them.
CREATE TABLE idempotency_v2 (
    key_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    ledger_seq BIGINT NOT NULL REFERENCES ledger (seq),
    created_at TEXT NOT NULL,
    PRIMARY KEY (key_id, idempotency_key)
);
INSERT INTO idempotency_v2 (key_id, idempotency_key, request_hash, ledger_seq, created_at)
SELECT i.key_id, i.idempotency_key, i.request_hash,
       (SELECT MAX(l.seq) FROM ledger l
         WHERE l.key_id = i.key_id AND l.idempotency_key = i.idempotency_key),
       i.created_at
  FROM idempotency i
 WHERE EXISTS (SELECT 1 FROM ledger l
                WHERE l.key_id = i.key_id AND l.idempotency_key = i.idempotency_key);
DROP TABLE idempotency;
ALTER TABLE idempotency_v2 RENAME TO idempotency;
-- The retention sweep deletes idempotency keys by age.
CREATE INDEX idempotency_created_at ON idempotency (created_at);
