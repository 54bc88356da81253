"""The schema registry: a Confluent-compatible server (``python -m streams.registry``) and the
client our CLI and codecs use."""

from streams.registry.client import RegisteredSchema, RegistryClient
from streams.registry.compatibility import CompatibilityLevel
from streams.registry.errors import ErrorCode
from streams.registry.schema import Reference, SchemaSource

__all__ = [
    "CompatibilityLevel",
    "ErrorCode",
    "Reference",
    "RegisteredSchema",
    "RegistryClient",
    "SchemaSource",
]
