-- Webhook traffic partitioned by time, so that retention drops whole weeks instead of deleting
-- rows one batch at a time (docs/scaling.md, "Time partitions"). Ids begin with their
-- millisecond in 12 hex digits, so a range of ids is a range of time: RANGE (id), no new
-- column. Today's rows stay where they are: the old table becomes the "history" partition
-- (everything below the newest id it holds), attached without a copy; an empty one is dropped.
-- The hub makes the weeks ahead (app/partitions.py); a DEFAULT partition takes any id that no
-- week covers yet, so a write never fails for want of one.
--
-- attempts no longer has a foreign key to deliveries: it would forbid dropping a week of
-- deliveries while a newer week of attempts points into it, and each attempt written took a
-- share lock on its delivery's row. Attempts are only written by the worker, for the delivery
-- it holds; retention removes a week's late attempts before it drops that week's deliveries.
ALTER TABLE attempts DROP CONSTRAINT attempts_delivery_id_fkey;

DO $$
DECLARE
    spec RECORD;
    idx RECORD;
BEGIN
    FOR spec IN SELECT * FROM (VALUES ('deliveries'), ('attempts')) AS s (tbl) LOOP
        EXECUTE format('ALTER TABLE %I RENAME TO %I', spec.tbl, spec.tbl || '_history');
        FOR idx IN SELECT indexname FROM pg_indexes
                   WHERE schemaname = current_schema() AND tablename = spec.tbl || '_history' LOOP
            EXECUTE format('ALTER INDEX %I RENAME TO %I', idx.indexname, idx.indexname || '_history');
        END LOOP;
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
                       'INCLUDING STORAGE) PARTITION BY RANGE (id)', spec.tbl, spec.tbl || '_history');
    END LOOP;
END $$;

-- The same keys and indexes as before, on the parents: attaching the history partition adopts
-- its matching indexes and foreign keys instead of building or checking them again.
ALTER TABLE deliveries ADD CONSTRAINT deliveries_pkey PRIMARY KEY (id);
ALTER TABLE deliveries ADD CONSTRAINT deliveries_endpoint_id_fkey
    FOREIGN KEY (endpoint_id) REFERENCES endpoints (id);
ALTER TABLE deliveries ADD CONSTRAINT deliveries_event_id_fkey
    FOREIGN KEY (event_id) REFERENCES events (id);
CREATE INDEX deliveries_due ON deliveries (lane, next_attempt_at)
    WHERE status IN ('pending', 'delivering') AND next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_endpoint ON deliveries (endpoint_id, status, id);
CREATE INDEX deliveries_event ON deliveries (event_id);
CREATE INDEX deliveries_ordered ON deliveries (endpoint_id, ordering_key)
    WHERE ordering_key IS NOT NULL AND status IN ('pending', 'delivering');
CREATE INDEX deliveries_replay ON deliveries (replay_id, status) WHERE replay_id IS NOT NULL;
CREATE INDEX deliveries_tenant_open ON deliveries (tenant_id, created_at)
    WHERE status IN ('pending', 'delivering');

ALTER TABLE attempts ADD CONSTRAINT attempts_pkey PRIMARY KEY (id);
CREATE INDEX attempts_delivery ON attempts (delivery_id, id);
CREATE INDEX attempts_endpoint ON attempts (endpoint_id, started_at);
CREATE INDEX attempts_tenant ON attempts (tenant_id, id);

DO $$
DECLARE
    spec RECORD;
    top TEXT;
    bound TEXT;
BEGIN
    FOR spec IN SELECT * FROM (VALUES ('deliveries', 'dlv'), ('attempts', 'att')) AS s (tbl, prefix) LOOP
        EXECUTE format('SELECT max(id) FROM %I', spec.tbl || '_history') INTO top;
        IF top IS NULL THEN
            EXECUTE format('DROP TABLE %I', spec.tbl || '_history');
        ELSE
            -- The first id of the millisecond after the newest row: id_floor() in app/ids.py.
            bound := spec.prefix || '_' || lpad(to_hex(
                ('x' || substr(top, length(spec.prefix) + 2, 12))::bit(48)::bigint + 1), 12, '0')
                || repeat('0', 20);
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (MINVALUE) TO (%L)',
                           spec.tbl, spec.tbl || '_history', bound);
        END IF;
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', spec.tbl || '_default', spec.tbl);
    END LOOP;
END $$;

-- Made and dropped by name from the store (app/store/retention.py); identifiers are quoted here.
-- Making a partition locks the parent too: with the same short `lock_timeout` as a drop, it is
-- tried again on the next run (weeks are made two ahead) rather than queue live writers.
CREATE FUNCTION billhook_make_partition(parent TEXT, name TEXT, lo TEXT, hi TEXT, wait TEXT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('lock_timeout', wait, TRUE);
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                   name, parent, lo, hi);
    RETURN TRUE;
EXCEPTION
    -- The default partition already holds rows of that range, another process made it, or
    -- the lock was busy.
    WHEN check_violation OR duplicate_table OR invalid_object_definition OR lock_not_available
    THEN RETURN FALSE;
END $$;

-- Drops a partition unless one of its deliveries is still pending or delivering. The parent is
-- locked first (DROP would lock it anyway), so nothing reopens a row between the check and the
-- drop; `lock_timeout` keeps live writers from queueing behind the lock for long: a drop that
-- cannot get it gives up and is tried again on the next run.
CREATE FUNCTION billhook_drop_partition(parent TEXT, name TEXT, wait TEXT)
RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    busy BOOLEAN := FALSE;
BEGIN
    PERFORM set_config('lock_timeout', wait, TRUE);
    EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', parent);
    IF parent = 'deliveries' THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE status IN (''pending'', ''delivering''))',
                       name) INTO busy;
    END IF;
    IF busy THEN
        RETURN FALSE;
    END IF;
    EXECUTE format('DROP TABLE %I', name);
    RETURN TRUE;
EXCEPTION
    WHEN lock_not_available THEN RETURN FALSE;
END $$;
