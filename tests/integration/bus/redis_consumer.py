"""A Redis Streams group consumer as its own process (the test SIGKILLs it with entries pending).

Usage: python -m tests.integration.bus.redis_consumer <port> <stream> <group> <name> <read> <ack>
Reads ``read`` entries as ``name``, acks the first ``ack`` of them, prints their ids as one JSON
line (acked, pending), then waits to be killed.
"""

from __future__ import annotations

import json
import sys
import time

import redis


def main() -> None:
    port, stream, group, name, read, ack = sys.argv[1:7]
    r = redis.Redis(host="127.0.0.1", port=int(port))
    got: list[str] = []
    while len(got) < int(read):
        answer = r.xreadgroup(group, name, {stream: ">"}, count=int(read) - len(got), block=2000)
        for _, entries in answer or []:
            got += [entry_id.decode() for entry_id, _ in entries]
    acked, pending = got[: int(ack)], got[int(ack) :]
    if acked:
        r.xack(stream, group, *acked)
    print(json.dumps({"acked": acked, "pending": pending}), flush=True)
    while True:  # holds its pending entries until the test kills it
        time.sleep(1)


if __name__ == "__main__":
    main()
