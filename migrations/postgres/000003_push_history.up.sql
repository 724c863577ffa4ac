-- What became of the pushes to each registration (p2http.PushHistory), for
-- GET /v1/registration and `p2http stats --node`: how many it received since
-- it was first registered, the outcome of the last one (last_push_at is its
-- time), and the time and reason of the last failure. The reason is one of
-- a bounded set (p2http.FailureReason): a push service's documented reason
-- or one of p2http's error codes, never text from upstream.
--
-- None of the columns is indexed, so writing them is a heap-only update
-- where the page has room (000002). Adding columns without a volatile
-- default changes the catalogue only; the checks are NOT VALID so that
-- adding them does not scan the table (every existing row is NULL there),
-- and they hold for every row written from now on.
ALTER TABLE registrations
    ADD COLUMN push_count          BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN last_push_outcome   TEXT,
    ADD COLUMN last_failure_at     TIMESTAMPTZ,
    ADD COLUMN last_failure_reason TEXT;

ALTER TABLE registrations
    ADD CONSTRAINT registrations_last_push_outcome_check
        CHECK (last_push_outcome IN ('delivered', 'coalesced', 'failed')) NOT VALID,
    ADD CONSTRAINT registrations_last_failure_reason_check
        CHECK (length(last_failure_reason) <= 64) NOT VALID;
