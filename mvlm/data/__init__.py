"""Data: the Sequence abstraction, benchmark loaders, the embedded benchmark, training views."""

from mvlm.data.sequence import DataError, Sequence

__all__ = ["DataError", "Sequence"]
