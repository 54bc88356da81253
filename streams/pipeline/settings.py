"""The pipeline's settings section lives in the one settings object; re-exported here."""

from streams.settings import PipelineSettings

__all__ = ["PipelineSettings"]
