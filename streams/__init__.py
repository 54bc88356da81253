"""changefeed: Debezium change events -> domain events -> version-guarded downstream tables."""

__version__ = "0.1.0"
