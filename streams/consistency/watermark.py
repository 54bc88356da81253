"""A source's applied position: how far every sink table it feeds has applied its changes.

Per partition of the source's change topics (``streams.sinks.applied`` explains what one partition
claims), then the minimum over the partitions, per replication domain: a position reached on one
partition says nothing about another.

A partition with nothing left to apply counts as caught up to the connector's *produced*
position E — the newest position below which the connector has written every change to Kafka. E
is the larger of:

- the connector's committed source offset in Kafka Connect (Connect commits an offset only after
  the producer acknowledged every record before it): PostgreSQL ``lsn_commit``, MariaDB ``gtids``
  (completed transactions);
- the highest watermark any partition of the source has applied: a record of a later transaction
  was produced after every record of the earlier ones. (On one broker requests are handled in
  order; on several, a later record may become visible first — there E comes from the offsets
  alone, see ``Evaluator.trust_siblings``.)

Order matters: E is read first, then Kafka's end offsets, then the sink's applied offsets, so a
partition is caught up to E only if everything produced before E was read was also applied.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from kafka import KafkaConsumer, TopicPartition
from psycopg import sql

from streams.consistency.sources import Source
from streams.consistency.token import Kind
from streams.sinks.applied import APPLIED_TABLE
from streams.sinks.ddl import OFFSETS_TABLE

log = logging.getLogger(__name__)
_GTID = re.compile(r"(\d+)-(\d+)-(\d+)")
Position = dict[int, int]
Partition = tuple[str, int]


def minimum(positions: Iterable[Mapping[int, int]]) -> Position:
    """Per domain, the smallest position; a domain missing from one partition is at -1 there."""
    items = list(positions)
    domains = {d for p in items for d in p}
    return {d: min(p.get(d, -1) for p in items) for d in domains} if items else {}


def maximum(a: Mapping[int, int], b: Mapping[int, int]) -> Position:
    return {d: max(a.get(d, -1), b.get(d, -1)) for d in set(a) | set(b)}


def connect_evidence(kind: Kind, offsets: list[dict[str, Any]]) -> Position:
    """The produced position a connector's committed offsets prove (see the module docstring)."""
    out: Position = {}
    for entry in offsets:
        offset = entry.get("offset") or {}
        if kind is Kind.POSTGRES and offset.get("lsn_commit") is not None:
            out[0] = max(out.get(0, -1), int(offset["lsn_commit"]))
        elif kind is Kind.MARIADB:
            for match in _GTID.finditer(str(offset.get("gtids") or "")):
                domain, seq = int(match.group(1)), int(match.group(3))
                out[domain] = max(out.get(domain, -1), seq)
    return out


def source_position(
    partitions: Iterable[Partition],
    watermarks: Mapping[Partition, Mapping[int, int]],
    caught_up: Iterable[Partition],
    produced: Mapping[int, int],
) -> Position:
    """Min over partitions of (its watermark, or the produced position when it is caught up)."""
    done = set(caught_up)
    per = []
    for p in partitions:
        own = dict(watermarks.get(p, {}))
        per.append(maximum(own, produced) if p in done else own)
    if not per:  # no change topic exists yet: nothing was produced, so everything produced is applied
        return dict(produced)
    return minimum(per)


@dataclass
class Evaluator:
    """Reads watermarks, offsets and end offsets for a set of sources: one sink connection
    (autocommit: every read sees the latest commits), one Kafka client and one HTTP client, however
    many waiters ask."""

    sources: Mapping[str, Source]
    group: str
    schema: str
    sink: psycopg.AsyncConnection[Any]
    bootstrap: str
    connect_url: str
    trust_siblings: bool = True
    partitions: dict[str, list[Partition]] = field(default_factory=dict)
    known_topics: set[str] = field(default_factory=set)
    _consumer: KafkaConsumer | None = None
    _http: httpx.AsyncClient | None = None

    def _topics(self) -> list[str]:
        return sorted({t for s in self.sources.values() for t in s.topics})

    async def watermarks(self) -> dict[Partition, Position]:
        try:
            return await self._watermarks()
        except psycopg.errors.UndefinedTable:  # no worker of this version flushed here yet
            return {}

    async def _watermarks(self) -> dict[Partition, Position]:
        rows = await (
            await self.sink.execute(
                sql.SQL(
                    "SELECT topic, partition, domain, position FROM {} WHERE consumer_group = %s"
                    " AND topic = ANY(%s)"
                ).format(sql.Identifier(self.schema, APPLIED_TABLE)),
                [self.group, self._topics()],
            )
        ).fetchall()
        out: dict[Partition, Position] = {}
        for topic, partition, domain, position in rows:
            out.setdefault((str(topic), int(partition)), {})[int(domain)] = int(position)
        return out

    async def applied_offsets(self) -> dict[Partition, int]:
        try:
            return await self._applied_offsets()
        except psycopg.errors.UndefinedTable:
            return {}

    async def _applied_offsets(self) -> dict[Partition, int]:
        rows = await (
            await self.sink.execute(
                sql.SQL(
                    "SELECT topic, partition, next_offset FROM {}"
                    " WHERE consumer_group = %s AND topic = ANY(%s)"
                ).format(sql.Identifier(self.schema, OFFSETS_TABLE)),
                [self.group, self._topics()],
            )
        ).fetchall()
        return {(str(t), int(p)): int(o) for t, p, o in rows}

    def _kafka(self) -> KafkaConsumer:
        if self._consumer is None:
            # kafka-python's default request timeout is 305 s; a hung broker must not stall the
            # caught-up round that long (waiters keep their own deadlines regardless).
            self._consumer = KafkaConsumer(
                bootstrap_servers=self.bootstrap,
                group_id=None,
                enable_auto_commit=False,
                request_timeout_ms=15_000,
            )
        return self._consumer

    def _refresh_partitions(self) -> tuple[dict[str, list[Partition]], set[str]]:
        consumer = self._kafka()
        existing = consumer.topics()  # a fresh metadata request: a topic created just now counts
        out: dict[str, list[Partition]] = {}
        for name, s in self.sources.items():
            out[name] = [
                (t, p)
                for t in s.topics
                if t in existing
                for p in sorted(consumer.partitions_for_topic(t) or ())
            ]
        return out, {t for s in self.sources.values() for t in s.topics if t in existing}

    async def refresh_partitions(self) -> None:
        self.partitions, self.known_topics = await asyncio.to_thread(self._refresh_partitions)

    def _end_offsets(self, partitions: list[Partition]) -> dict[Partition, int]:
        tps = [TopicPartition(t, p) for t, p in partitions]
        ends = self._kafka().end_offsets(tps) if tps else {}
        return {(tp.topic, tp.partition): int(o or 0) for tp, o in ends.items()}

    async def _connect_offsets(self, name: str) -> list[dict[str, Any]]:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=5)
        try:
            r = await self._http.get(f"{self.connect_url}/connectors/{name}/offsets")
            if r.status_code != 200:
                return []
            offsets: list[dict[str, Any]] = r.json().get("offsets", [])
            return offsets
        except (httpx.HTTPError, ValueError) as exc:
            log.debug("connector %s offsets unavailable: %s", name, exc)
            return []

    async def fast(self) -> dict[str, Position]:
        """Watermarks only (one query): enough whenever later transactions reached every partition.

        Uses the partitions of the last refresh; a source with a change topic that did not exist
        then gets no position here (its first records may be the waiter's own), only from ``full``.
        Partitions added to an existing topic are seen at the next ``full`` (an operator's act)."""
        wm = await self.watermarks()
        out: dict[str, Position] = {}
        for name, s in self.sources.items():
            known = set(s.topics) <= self.known_topics
            out[name] = source_position(self.partitions.get(name, []), wm, (), {}) if known else {}
        return out

    async def full(self, names: Iterable[str]) -> dict[str, Position]:
        """Watermarks plus the caught-up rule, for the sources named (see the module docstring)."""
        names = sorted(set(names))
        await self.refresh_partitions()
        before = await self.watermarks()
        produced: dict[str, Position] = {}
        for name in names:
            s = self.sources[name]
            evidence = connect_evidence(s.kind, await self._connect_offsets(name))
            if self.trust_siblings:
                for p in self.partitions.get(name, []):
                    evidence = maximum(evidence, before.get(p, {}))
            produced[name] = evidence
        wanted = [p for n in names for p in self.partitions.get(n, [])]
        ends = await asyncio.to_thread(self._end_offsets, wanted)
        applied = await self.applied_offsets()
        wm = await self.watermarks()
        caught = [p for p in wanted if applied.get(p, 0) >= ends.get(p, 0)]
        return {n: source_position(self.partitions.get(n, []), wm, caught, produced[n]) for n in names}

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)
