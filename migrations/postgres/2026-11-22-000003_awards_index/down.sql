DROP INDEX idempotency_created_at;
DROP INDEX awards_policy_student;
