DROP TABLE policy_versions;
DROP TABLE students;
