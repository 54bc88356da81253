-- Least privilege for the Debezium login (the role itself, with LOGIN REPLICATION and its
-- password from the secrets file, is created by streams/services/migrate.py before this runs).
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM debezium_customers;
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO debezium_customers', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO debezium_customers;
-- Captured tables: SELECT for the initial and incremental snapshots.
GRANT SELECT ON public.customers TO debezium_customers;
-- Incremental snapshots write open/close watermarks into the signal table.
GRANT SELECT, INSERT ON public.changefeed_signal TO debezium_customers;
-- heartbeat.action.query: UPDATE ... WHERE id = 1 needs SELECT on the filtered column.
GRANT SELECT, UPDATE ON public.changefeed_heartbeat TO debezium_customers;
