-- The once-per-student check looks awards up by (policy, student); without this index it scans.
CREATE INDEX awards_policy_student ON awards (policy_id, student_id);
-- The retention sweep deletes idempotency keys by age.
CREATE INDEX idempotency_created_at ON idempotency (created_at);
