"""The demo's load generator: seeded, fixed-rate writes to both source services."""

from streams.load.mix import Mix, WriteOp
from streams.load.rate import RateLimiter
from streams.load.runner import LoadPlan, LoadReport, run_load
from streams.load.written import LoadTally, Written

__all__ = ["LoadPlan", "LoadReport", "LoadTally", "Mix", "RateLimiter", "WriteOp", "Written", "run_load"]
