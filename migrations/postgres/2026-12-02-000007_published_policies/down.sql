ALTER TABLE policy_versions DROP COLUMN published_by;
ALTER TABLE policy_versions DROP COLUMN tests;
