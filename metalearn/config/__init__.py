"""Structured-config schemas and validation of a composed run config."""

from metalearn.config.validate import validate_config

__all__ = ["validate_config"]
