"""``faust -A <module> worker`` with the README's kind of agent: typed records, no bytes."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from streams.settings import Settings
from tests.integration.bus.helpers import bus_env, email_changed, order_placed, produce
from tests.integration.streams.helpers import REPO
from tests.polling import poll

pytestmark = pytest.mark.integration


def test_a_user_agent_gets_typed_domain_events(
    bus_settings: Settings, topics: tuple[str, str], schema: str, tmp_path: Path
) -> None:
    domain, change = topics
    produce(bus_settings, [email_changed(domain, 1), order_placed(domain, 2)])
    env = {
        **os.environ,
        **bus_env(change, domain),  # no bridge, no handler: only the agent below consumes
        "CHANGEFEED_WORKER__APP_ID": f"it-bus-agent-{uuid.uuid4().hex[:8]}",
        "CHANGEFEED_PIPELINE__SINK_SCHEMA": schema,
        "IT_TYPED_AGENT_TOPIC": domain,
        "PYTHONPATH": str(REPO),
    }
    log = tmp_path / "faust.log"
    with log.open("wb") as out:
        argv = [str(REPO / ".venv/bin/faust"), "-A", "tests.integration.bus.typed_agents", "worker"]
        proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:

            def both() -> bool:
                assert proc.poll() is None, log.read_text()[-3000:]
                text = log.read_text()
                return "TYPED email 1 c1@example.com" in text and "TYPED order 2 200 EUR" in text

            poll(both, 90, "the agent's typed lines")
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(30)
