"""DDL for materialized tables and changefeed's own control tables (idempotent).

Every materialized row carries ``_cf_position`` (the encoded ``SourcePosition`` of the event that
wrote it) and ``_cf_deleted_at``. Hard-delete tables keep deleted keys with their position in
``<table>__cf_deleted`` so a late, older upsert cannot resurrect the row; soft-delete tables keep
the row itself with ``_cf_deleted_at`` set. Identifiers go through ``sql.Identifier``; column types
were checked against an allow-list by ``validate_mappings``.
"""

from __future__ import annotations

from typing import Protocol

from psycopg import sql

from streams.sinks.applied import applied_ddl
from streams.sinks.lookup import lookup_ddl
from streams.sinks.mapping import Column, DeletePolicy, TableMapping
from streams.sinks.tx_progress import progress_ddl

OFFSETS_TABLE = "changefeed_offsets"
CONFLICTS_TABLE = "changefeed_conflicts"
AUDIT_TABLE = "changefeed_audit"
NOTICES_TABLE = "changefeed_source_notices"
SNAPSHOT_POINTS_TABLE = "changefeed_snapshot_points"
AUDIT_FUNCTION = "changefeed_audit_row"
POSITION, DELETED_AT = "_cf_position", "_cf_deleted_at"


def ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def column_type(col: Column) -> sql.SQL:
    return sql.SQL(col.type)  # validated against the allow-list in mapping.py


def _column_defs(cols: list[Column], not_null: bool) -> list[sql.Composable]:
    suffix = sql.SQL(" NOT NULL" if not_null else "")
    return [sql.SQL("{} {}{}").format(ident(c.name), column_type(c), suffix) for c in cols]


def _table(schema: str, name: str, defs: list[sql.Composable], key: list[str]) -> sql.Composed:
    pk = sql.SQL(", ").join(ident(k) for k in key)
    return sql.SQL("CREATE TABLE IF NOT EXISTS {} ({}, PRIMARY KEY ({}))").format(
        ident(schema, name), sql.SQL(", ").join(defs), pk
    )


def materialized_table_ddl(m: TableMapping) -> list[sql.Composed]:
    """The sink table (and, for hard deletes, its tombstone table)."""
    bookkeeping: list[sql.Composable] = [
        sql.SQL("{} bytea NOT NULL").format(ident(POSITION)),
        sql.SQL("{} timestamptz").format(ident(DELETED_AT)),
    ]
    keys = _column_defs(m.key_columns, True)
    stmts = [
        _table(
            m.sink_schema,
            m.sink_table,
            keys + _column_defs(m.value_columns, False) + bookkeeping,
            list(m.key),
        )
    ]
    if m.delete_policy is DeletePolicy.HARD:
        stmts.append(_table(m.sink_schema, m.tombstone_table, keys + bookkeeping, list(m.key)))
    return stmts


def added_columns_ddl(m: TableMapping) -> list[sql.Composed]:
    """Value columns mapped after the table was created (an extra column, a later release).

    Added in place; existing rows keep NULL until their next change (or a re-snapshot).
    """
    table = ident(m.sink_schema, m.sink_table)
    return [
        sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS {}").format(table, d)
        for d in _column_defs(m.value_columns, False)
    ]


def notices_ddl(schema: str) -> list[sql.Composed]:
    """The source-notice ledger (``streams.sinks.notices``): one row per mapped column a writer
    schema lacks (per sink table and column, the first time) and per truncate (applied or
    ignored, per sink table and position). The partial unique indexes make redeliveries no-ops."""
    t = ident(schema, NOTICES_TABLE)
    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, sink_table text NOT NULL,"
            " source_table text NOT NULL, kind text NOT NULL, source_column text, rows bigint,"
            " position bytea NOT NULL, topic text NOT NULL, partition integer NOT NULL,"
            " kafka_offset bigint NOT NULL, detail text NOT NULL DEFAULT '',"
            " at timestamptz NOT NULL DEFAULT now())"
        ).format(t),
        sql.SQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (sink_table, source_column)"
            " WHERE kind = 'column_missing'"
        ).format(ident(NOTICES_TABLE + "_column"), t),
        sql.SQL(
            "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} (sink_table, kind, position)"
            " WHERE kind <> 'column_missing'"
        ).format(ident(NOTICES_TABLE + "_position"), t),
    ]


def control_tables_ddl(schema: str) -> list[sql.Composed]:
    """Offsets stored with the rows, the conflict ledger, the position audit log and the
    source-notice ledger."""
    return [
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (consumer_group text NOT NULL, topic text NOT NULL,"
            " partition integer NOT NULL, next_offset bigint NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now(),"
            " PRIMARY KEY (consumer_group, topic, partition))"
        ).format(ident(schema, OFFSETS_TABLE)),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, sink_table text NOT NULL,"
            " source_table text NOT NULL, row_key jsonb NOT NULL, reason text NOT NULL,"
            " policy text NOT NULL, stored_position bytea, incoming_position bytea NOT NULL,"
            " topic text NOT NULL, partition integer NOT NULL, kafka_offset bigint NOT NULL,"
            " at timestamptz NOT NULL DEFAULT now())"
        ).format(ident(schema, CONFLICTS_TABLE)),
        # The newest full-snapshot point per source (Debezium's topic prefix): the first
        # transaction streamed after a snapshot is placed by it (streams.sinks.snapshot_points).
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (source_name text PRIMARY KEY, point bytea NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now())"
        ).format(ident(schema, SNAPSHOT_POINTS_TABLE)),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (id bigserial PRIMARY KEY, sink_table text NOT NULL,"
            " op text NOT NULL, row_key jsonb NOT NULL, old_position bytea, new_position bytea,"
            " at timestamptz NOT NULL DEFAULT clock_timestamp())"
        ).format(ident(schema, AUDIT_TABLE)),
        # TG_ARGV[0] is the logical table (shared by a table and its tombstone table), the rest
        # are key columns; the log lets tests prove no row ever moved to an older position.
        sql.SQL(
            "CREATE OR REPLACE FUNCTION {fn}() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
            "DECLARE img jsonb; k jsonb;\n"
            "BEGIN\n"
            "  IF TG_OP = 'DELETE' THEN img := to_jsonb(OLD); ELSE img := to_jsonb(NEW); END IF;\n"
            "  SELECT jsonb_object_agg(c, img -> c) INTO k FROM unnest(TG_ARGV[1:]) AS c;\n"
            "  INSERT INTO {audit} (sink_table, op, row_key, old_position, new_position)\n"
            "  VALUES (TG_ARGV[0], TG_TABLE_NAME || ':' || TG_OP, k,\n"
            "    CASE WHEN TG_OP <> 'INSERT' THEN OLD._cf_position END,\n"
            "    CASE WHEN TG_OP <> 'DELETE' THEN NEW._cf_position END);\n"
            "  RETURN NULL;\n"
            "END $fn$"
        ).format(fn=ident(schema, AUDIT_FUNCTION), audit=ident(schema, AUDIT_TABLE)),
        *notices_ddl(schema),
        *applied_ddl(schema),
        *progress_ddl(schema),  # atomic sources' transactions applied in parts
    ]


def audit_trigger_ddl(m: TableMapping, control_schema: str = "public") -> list[sql.Composed]:
    """Record every position change of the mapping's rows (opt-in: it costs a write per row)."""
    tables = [m.sink_table] + ([m.tombstone_table] if m.delete_policy is DeletePolicy.HARD else [])
    args = sql.SQL(", ").join(sql.Literal(a) for a in (f"{m.sink_schema}.{m.sink_table}", *m.key))
    out = []
    for table in tables:
        target, trigger = ident(m.sink_schema, table), ident("changefeed_audit")
        out.append(sql.SQL("DROP TRIGGER IF EXISTS {} ON {}").format(trigger, target))
        out.append(
            sql.SQL(
                "CREATE TRIGGER {} AFTER INSERT OR UPDATE OR DELETE ON {}"
                " FOR EACH ROW EXECUTE FUNCTION {}({})"
            ).format(trigger, target, ident(control_schema, AUDIT_FUNCTION), args)
        )
    return out


class _Known(Protocol):
    audit: bool
    control_schema: str

    def by_sink(self, schema: str, table: str) -> TableMapping | None: ...


def mapping_ddl(m: TableMapping, tables: _Known) -> list[sql.Composed]:
    """Everything one mapping needs in the sink: its tables, columns added since, the columns its
    lookups copy (typed like the looked-up columns where those are known), the audit trigger."""
    stmts = materialized_table_ddl(m) + added_columns_ddl(m)
    on_types = {c.name: c.type for c in m.columns}
    for lk in m.lookups:
        looked = tables.by_sink(m.sink_schema, lk.table)
        types: dict[str, str] = {}
        for name, sources in lk.columns:
            source = looked.column(sources[0]) if looked is not None and len(sources) == 1 else None
            types[name] = source.type if source is not None else "text"
        stmts += lookup_ddl(m.sink_schema, m.sink_table, lk, types, on_types[lk.on])
    if tables.audit:
        stmts += audit_trigger_ddl(m, tables.control_schema)
    return stmts
