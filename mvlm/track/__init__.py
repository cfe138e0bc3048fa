"""Tracking: confidence (pure functions), view mapping, the MVLM state machine (docs/tracker.md)
and its extension layer.

Names are imported on first use (PEP 562): `mvlm.track.spec` (which tracker, no torch) can be
read by a process that only hands work to tracking workers."""

from __future__ import annotations

from mvlm.lazy import lazy_exports

_HOME = {
    "BuiltTracker": "mvlm.track.tracker", "MVLMTracker": "mvlm.track.tracker", "TrackResult": "mvlm.track.tracker",
    "build_tracker": "mvlm.track.tracker", "create_tracker": "mvlm.track.tracker",
    "ExtendedTracker": "mvlm.track.extensions",
    "TrackerError": "mvlm.track.spec", "TrackerSpec": "mvlm.track.spec", "describe_tracker": "mvlm.track.spec",
    "resolve_switches": "mvlm.track.spec",
}

__all__, __getattr__, __dir__ = lazy_exports('mvlm.track', _HOME)
