"""Tracking: confidence (pure functions, digest §2), view mapping, the MVLM state machine."""

from mvlm.track.tracker import (BuiltTracker, MVLMTracker, TrackerError, TrackerSpec, TrackResult,
                                build_tracker, resolve_switches)

__all__ = ["BuiltTracker", "MVLMTracker", "TrackResult", "TrackerError", "TrackerSpec", "build_tracker",
           "resolve_switches"]
