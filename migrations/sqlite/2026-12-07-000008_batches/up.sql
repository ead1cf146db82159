-- Cohort batches: a preview or award run over a frozen list of students, worked through in
-- chunks by one process at a time (a lease: runner and heartbeat), so a batch survives a
-- restart and resumes where its last committed chunk ended.
CREATE TABLE batches (
    batch_id TEXT PRIMARY KEY NOT NULL,
    mode TEXT NOT NULL,
    state TEXT NOT NULL,
    policy_ids TEXT NOT NULL,
    as_of TEXT NOT NULL,
    selection TEXT NOT NULL,
    student_ids TEXT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL,
    counts TEXT NOT NULL,
    key_id TEXT NOT NULL,
    error TEXT,
    runner TEXT,
    heartbeat_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX batches_state ON batches (state);
-- One row per committed chunk of a batch (`position`: the chunk's first student): its result
-- lines as NDJSON, written with the chunk's progress in one transaction.
CREATE TABLE batch_results (
    batch_id TEXT NOT NULL REFERENCES batches (batch_id),
    position INTEGER NOT NULL,
    lines TEXT NOT NULL,
    PRIMARY KEY (batch_id, position)
);
-- Counters that move with each change of a kind of data, in the same transaction: a process
-- that keeps something computed from that data (the reports' evaluation of the whole cohort)
-- sees from one read whether it is stale, whichever process made the change.
CREATE TABLE generations (
    name TEXT PRIMARY KEY NOT NULL,
    value INTEGER NOT NULL
);
INSERT INTO generations (name, value) VALUES ('students', 0);
