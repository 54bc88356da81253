"""The one command line, ``changefeed``: each command group lives in its own module."""

import signal

# Ctrl-C / SIGINT raises KeyboardInterrupt, set before the imports below (a second of them): a
# parent that ignores SIGINT (a non-interactive shell's background job, and all it starts) passes
# the ignore on, and a worker stopped during its start-up lost the signal, joined its group and
# ran on until killed (the K7 fault test's settle worker did). The worker's runtime installs its
# own handlers before any service starts.
signal.signal(signal.SIGINT, signal.default_int_handler)

from streams.cli.main import app, main  # noqa: E402  (after the handler, on purpose)

__all__ = ["app", "main"]
