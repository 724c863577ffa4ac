ALTER TABLE registrations
    DROP COLUMN last_failure_reason,
    DROP COLUMN last_failure_at,
    DROP COLUMN last_push_outcome,
    DROP COLUMN push_count;
