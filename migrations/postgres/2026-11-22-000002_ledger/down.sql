DROP TABLE idempotency;
DROP TABLE awards;
DROP TABLE ledger;
DROP TABLE programs;
