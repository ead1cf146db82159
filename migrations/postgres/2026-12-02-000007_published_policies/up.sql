-- Policies published over the API: the cases document a version was checked with (also kept for
-- the seed versions from rules/) and the key that published it (none for rules/).
ALTER TABLE policy_versions ADD COLUMN tests TEXT;
ALTER TABLE policy_versions ADD COLUMN published_by TEXT;
