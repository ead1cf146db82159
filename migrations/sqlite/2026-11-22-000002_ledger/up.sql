-- One row per program (policy id): the head of its ledger chain and its budget counters.
-- An award transaction locks this row, so everything that must be exact is decided under it.
CREATE TABLE programs (
    policy_id TEXT PRIMARY KEY NOT NULL,
    head_seq BIGINT NOT NULL DEFAULT 0,
    head_hash TEXT NOT NULL,
    budget_total_cents BIGINT,
    budget_max_awards BIGINT,
    committed_cents BIGINT NOT NULL DEFAULT 0,
    committed_awards BIGINT NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);

-- The append-only ledger. Rows are never updated or deleted.
CREATE TABLE ledger (
    seq INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    policy_id TEXT NOT NULL,
    chain_seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    key_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    idempotency_key TEXT,
    student_id TEXT NOT NULL,
    policy_version INTEGER NOT NULL,
    policy_hash TEXT NOT NULL,
    eligo_version TEXT NOT NULL,
    rhai_version TEXT NOT NULL,
    as_of TEXT NOT NULL,
    record TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason_code TEXT,
    evaluation TEXT NOT NULL,
    award TEXT NOT NULL,
    amount_cents BIGINT NOT NULL,
    payee TEXT,
    award_id TEXT,
    note TEXT,
    prev_hash TEXT NOT NULL,
    entry_hash TEXT NOT NULL,
    UNIQUE (policy_id, chain_seq)
);
CREATE INDEX ledger_student ON ledger (student_id, seq);
CREATE INDEX ledger_policy ON ledger (policy_id, seq);

-- Current state of each award, derived from the ledger (granted, then maybe revoked).
CREATE TABLE awards (
    award_id TEXT PRIMARY KEY NOT NULL,
    policy_id TEXT NOT NULL,
    student_id TEXT NOT NULL,
    once_per_student BOOLEAN NOT NULL,
    amount_cents BIGINT NOT NULL,
    granted_seq BIGINT NOT NULL,
    revoked_seq BIGINT,
    active BOOLEAN NOT NULL
);
-- The backstop for once-per-student: at most one active award per (policy, student).
CREATE UNIQUE INDEX awards_one_active ON awards (policy_id, student_id) WHERE active AND once_per_student;

-- Idempotency keys, unique per caller; kept at least 24 hours (see README).
CREATE TABLE idempotency (
    key_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (key_id, idempotency_key)
);
