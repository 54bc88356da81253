-- Least privilege for the Debezium login (the role itself, with LOGIN REPLICATION and its
-- password from the secrets file, is created by streams/demo/services/migrate.py before this runs).
--
-- What these grants do NOT protect. They limit what the login can SELECT (the snapshots), not
-- what it can read: REPLICATION lets it create a logical replication slot with any output
-- plugin the server has (test_decoding ships with PostgreSQL) and decode every change of every
-- table of this database, granted or not - customer_notes included. Where pg_hba.conf accepts
-- "replication" connections for it (initdb's default, and the local stack's), it can also take
-- a physical base backup: every database of the cluster and the roles' password hashes. So
-- treat this login's password like a superuser's for reading, and keep data it must never see
-- in another cluster (or restrict its pg_hba.conf lines to its database, no "replication").
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM debezium_customers;
DO $$
BEGIN
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO debezium_customers', current_database());
END
$$;
GRANT USAGE ON SCHEMA public TO debezium_customers;
-- Captured tables: SELECT for the initial and incremental snapshots (nothing else is granted,
-- so a snapshot or a stray query cannot read other tables; decoding can, see above).
GRANT SELECT ON public.customers TO debezium_customers;
-- Incremental snapshots write open/close watermarks into the signal table.
GRANT SELECT, INSERT ON public.changefeed_signal TO debezium_customers;
-- heartbeat.action.query: UPDATE ... WHERE id = 1 needs SELECT on the filtered column.
GRANT SELECT, UPDATE ON public.changefeed_heartbeat TO debezium_customers;
