-- Timed jobs that must run once per due moment however many workers run (automatic
-- finalization, retention): the worker that moves a job's due time is the one that runs it.
CREATE TABLE job_runs (
    name    TEXT PRIMARY KEY,
    due_at  BIGINT NOT NULL
);
