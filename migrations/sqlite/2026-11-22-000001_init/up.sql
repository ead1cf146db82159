CREATE TABLE students (
    student_id TEXT PRIMARY KEY NOT NULL,
    school_id TEXT,
    record TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX students_school_id ON students (school_id, student_id);

CREATE TABLE policy_versions (
    policy_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    hash TEXT NOT NULL,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    sponsor TEXT NOT NULL,
    effective_from TEXT NOT NULL,
    effective_to TEXT,
    meta TEXT NOT NULL,
    origin TEXT NOT NULL,
    published_at TEXT NOT NULL,
    PRIMARY KEY (policy_id, version)
);
