-- Stale tokens: an app's policy of disabling tokens unused for a while, and
-- the index that finds tokens by their last activity (last use, or creation
-- when never used), which the "unused for" filter and the policy's job read.
--
-- The index leads with status so that the job (status = 'active') and the
-- list filtered by status both read only the rows they want; the list's
-- "unused for" filter without a status names every status (IN) to use it.

-- +goose Up
ALTER TABLE apps ADD COLUMN disable_unused_after INTEGER;

CREATE INDEX tokens_status_activity ON tokens (status, coalesce(last_used_at, created_at));

-- The list sorted by name (either order) reads this index, by byte as the
-- store compares names.
CREATE INDEX tokens_name_sort ON tokens (name, id);

-- +goose Down
DROP INDEX tokens_name_sort;
DROP INDEX tokens_status_activity;
ALTER TABLE apps DROP COLUMN disable_unused_after;
