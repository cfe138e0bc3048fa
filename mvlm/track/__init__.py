"""Tracking: confidence (pure functions, digest §2), view mapping, the MVLM state machine.

Names are imported on first use (PEP 562): `mvlm.track.spec` (which tracker, no torch) can be
read by a process that only hands work to tracking workers."""

from __future__ import annotations

import importlib

_HOME = {
    "BuiltTracker": "mvlm.track.tracker", "MVLMTracker": "mvlm.track.tracker", "TrackResult": "mvlm.track.tracker",
    "build_tracker": "mvlm.track.tracker",
    "TrackerError": "mvlm.track.spec", "TrackerSpec": "mvlm.track.spec", "describe_tracker": "mvlm.track.spec",
    "resolve_switches": "mvlm.track.spec",
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'mvlm.track' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
