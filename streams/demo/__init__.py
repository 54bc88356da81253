"""`changefeed demo`: two services synced into a third under load, proven by verify."""

from streams.demo.run import DemoOptions, run_demo
from streams.demo.summary import DemoSummary

__all__ = ["DemoOptions", "DemoSummary", "run_demo"]
