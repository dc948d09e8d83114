"""metalearn: a config-driven experiment CLI for meta-learning."""

__version__ = "0.1.0"
