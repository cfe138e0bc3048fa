"""MVLM experiment suite: tracking by language with margin-based confidence gating."""

__version__ = "0.1.0"
