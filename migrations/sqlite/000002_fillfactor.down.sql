-- Nothing to undo on SQLite (see 000002_fillfactor.up.sql).
SELECT 1;
