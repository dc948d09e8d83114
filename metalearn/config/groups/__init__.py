"""Schemas of the config groups, one module per group."""
