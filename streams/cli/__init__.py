"""The one command line, ``changefeed``: each command group lives in its own module."""

from streams.cli.main import app, main

__all__ = ["app", "main"]
