-- 0002: pulls.created_at in whole milliseconds, like images.pulled_at, so that the list cursor (which
-- carries a JS Date, milliseconds only) compares exactly and no pull created in the same millisecond
-- as a page's last one is skipped.
UPDATE pulls SET created_at = date_trunc('milliseconds', created_at);
ALTER TABLE pulls ALTER COLUMN created_at SET DEFAULT date_trunc('milliseconds', clock_timestamp());
ALTER TABLE pulls ADD CONSTRAINT pulls_created_at_milliseconds CHECK (created_at = date_trunc('milliseconds', created_at));
