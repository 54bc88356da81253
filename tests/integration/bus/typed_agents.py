"""The README's own-agent example, run by the test with ``faust -A``: one line per typed event."""

from __future__ import annotations

import os
from typing import Any

from streams.bus.main import app, domain_events
from streams.bus.records import CustomerEmailChanged, OrderPlaced

TOPIC = os.environ["IT_TYPED_AGENT_TOPIC"]


@app.agent(domain_events(TOPIC))
async def on_events(events: Any) -> None:
    async for event in events:
        if isinstance(event, CustomerEmailChanged):
            print(f"TYPED email {event.subject} {event.data.new_email}", flush=True)
        elif isinstance(event, OrderPlaced):
            print(
                f"TYPED order {event.data.order_id} {event.data.total_minor} {event.data.currency}",
                flush=True,
            )
