-- 0003: an index on pulls.state, for /metrics (pulls by state, failures by code) and the hourly
-- retention delete, which would otherwise scan the whole table.
CREATE INDEX pulls_state ON pulls (state, finished_at);
