-- What became of the pushes to each registration (p2http.PushHistory), as
-- in PostgreSQL's 000003: the count since the first registration, the
-- outcome of the last push (last_push_at is its time), and the time (unix
-- microseconds) and bounded reason of the last failure.
ALTER TABLE registrations ADD COLUMN push_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE registrations ADD COLUMN last_push_outcome TEXT
    CHECK (last_push_outcome IN ('delivered', 'coalesced', 'failed'));
ALTER TABLE registrations ADD COLUMN last_failure_at INTEGER;
ALTER TABLE registrations ADD COLUMN last_failure_reason TEXT
    CHECK (length(last_failure_reason) <= 64);
