"""The oracle: source ≡ sink by chunked SQL checksums, and the sink's lag behind Kafka."""

from streams.verify.compare import Divergence, DivergentKey, TableResult, compare_table
from streams.verify.lag import PartitionLag, measure_lag
from streams.verify.mappings import project_mappings, resolve_project
from streams.verify.run import VerifyOptions, open_databases, verify_once, verify_wait

__all__ = [
    "Divergence",
    "DivergentKey",
    "PartitionLag",
    "TableResult",
    "VerifyOptions",
    "compare_table",
    "measure_lag",
    "open_databases",
    "project_mappings",
    "resolve_project",
    "verify_once",
    "verify_wait",
]
