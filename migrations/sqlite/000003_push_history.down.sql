ALTER TABLE registrations DROP COLUMN last_failure_reason;
ALTER TABLE registrations DROP COLUMN last_failure_at;
ALTER TABLE registrations DROP COLUMN last_push_outcome;
ALTER TABLE registrations DROP COLUMN push_count;
