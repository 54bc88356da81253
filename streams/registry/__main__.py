"""``python -m streams.registry``: serve the registry with the settings of this environment."""

from __future__ import annotations

import logging

from streams.registry.server import serve
from streams.settings import load_settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # Both Kafka clients log every connection at INFO; the registry's own lines are what matter.
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    serve(load_settings())


if __name__ == "__main__":
    main()
