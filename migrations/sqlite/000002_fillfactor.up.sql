-- PostgreSQL's 000002 leaves room in the pages of registrations for
-- updates in place; SQLite has no such setting. This file keeps the two
-- folders at the same versions.
SELECT 1;
