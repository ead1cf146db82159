-- Page sessions: a random token per signed-in person, stored as its SHA-256 only, bound to the
-- access key it was opened with (a revoked key ends its sessions), with a CSRF token for forms.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY NOT NULL,
    key_id TEXT NOT NULL REFERENCES api_keys (key_id),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL
);
CREATE INDEX sessions_key_id ON sessions (key_id);
CREATE INDEX sessions_created_at ON sessions (created_at);
