"""Which tracker a run uses, without building it (no torch).

`TrackerSpec` is what a worker process needs to build the same tracker; `describe_tracker`
resolves it into the settings and the JSON description that every result's meta records
(checkpoint sha256, resolved tracker config, switches). A process that only hands sequences to
tracking workers, or compares finished results with a tracker before tracking again, reads
that description here and never imports torch or loads weights; `build_tracker` attaches the
very same description to the tracker it builds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

# resolve_switches (config) is the one place that turns `compat` into switch values; re-exported here
from mvlm.config import (ConfigError, ModelConfig, TrackerConfig, model_config, resolve_switches, to_dict,  # noqa: F401
                         tracker_config)


class TrackerError(ValueError):
    """Bad input to the tracker (frame, text, box) or a tracker/model mismatch."""


@dataclass
class TrackerSpec:
    """Everything needed to build the same tracker in another process (picklable)."""

    checkpoint: Optional[str] = None  # suite checkpoint (safetensors); None = random init
    model_preset: str = "tiny"  # used only without a checkpoint
    tracker_preset: Optional[str] = None  # None = from the checkpoint metadata / the network
    compat: str = "reference"
    overrides: tuple[str, ...] = ()  # "key=value" on the tracker config ("tracker." prefix optional)
    device: str = "cpu"
    seed: int = 0  # random-init weights
    # for checkpoints without a model config inside (the released MVLM_TF.pth.tar): the model
    # section to build, e.g. {"preset": "base", "text": {"weights": "/path/clip-vit-l-14.safetensors"}}
    checkpoint_model: Optional[dict] = None


@dataclass
class TrackerDescription:
    """A spec resolved: the network's config, the tracker's, and the JSON-ready `info`."""

    model_cfg: ModelConfig
    tracker_cfg: TrackerConfig
    meta: dict[str, Any]  # the checkpoint's metadata as `load_model` returns it ({} without one)
    info: dict[str, Any]


def tracker_overrides(overrides: Any) -> dict[str, Any]:
    """`key=value` strings (YAML values) -> a tracker-config mapping; `tracker.` prefix optional."""
    from mvlm.config import parse_override

    values: dict[str, Any] = {}
    for text in overrides or ():
        keys, value = parse_override(text)
        if keys[0] == "tracker":
            keys = keys[1:]
        if len(keys) != 1:
            raise ConfigError(f"override {text!r}: tracker settings are flat (e.g. tau=0.2, memory=false)")
        values[keys[0]] = value
    return values


def check_tracker_config(tracker_cfg: TrackerConfig, model_cfg: ModelConfig) -> None:
    """Raise ConfigError for settings no tracker can run with, or that the network cannot serve."""
    if not tracker_cfg.template_free and tracker_cfg.num_templates < 1:
        raise ConfigError("tracker.num_templates: template mode needs at least 1 template")
    if not 0.0 < tracker_cfg.size_damping <= 1.0:
        raise ConfigError(f"tracker.size_damping: must lie in (0, 1] (1 = no damping), got {tracker_cfg.size_damping}")
    cut = tracker_cfg.shot_cut_threshold
    if cut is not None and not -1.0 <= cut <= 1.0:
        raise ConfigError(f"tracker.shot_cut_threshold: a correlation in [-1, 1] or null (off), got {cut}")
    if tracker_cfg.template_free and not model_cfg.template_free:
        raise ConfigError(
            "the network expects templates (model.template_free: false) but the tracker preset "
            f"{tracker_cfg.preset!r} is template-free: use the bbox tracker preset")


def file_sha256(path: str) -> str:
    """Content hash of a checkpoint, so that results name the exact weights they came from."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def checkpoint_path(spec: TrackerSpec) -> Path:
    path = Path(spec.checkpoint)
    if not path.is_file():
        raise TrackerError(f"{path}: checkpoint file not found")
    return path


def complete_description(spec: TrackerSpec, model_cfg: ModelConfig, meta: dict[str, Any]) -> TrackerDescription:
    """The tracker settings and `info` of `spec` for a network of `model_cfg` (checkpoint `meta`)."""
    if spec.checkpoint:
        default_preset = meta.get("tracker_preset") or ("bbox" if meta.get("mode") == "bbox" else "tf")
    else:
        default_preset = "tf" if model_cfg.template_free else "bbox"
    values = {"compat": spec.compat, **tracker_overrides(spec.overrides)}
    tracker_cfg = tracker_config(values, preset=spec.tracker_preset or default_preset)
    check_tracker_config(tracker_cfg, model_cfg)
    info = {
        "checkpoint": spec.checkpoint, "checkpoint_sha256": file_sha256(spec.checkpoint) if spec.checkpoint else None,
        "random_init": not spec.checkpoint or bool(meta.get("random_init")),
        "seed": None if spec.checkpoint else spec.seed, "model_preset": model_cfg.preset,
        "checkpoint_meta": {k: v for k, v in meta.items() if k != "model_config"},
        "tracker": to_dict(tracker_cfg), "switches": resolve_switches(tracker_cfg), "device": spec.device,
    }
    return TrackerDescription(model_cfg, tracker_cfg, meta, info)


def describe_tracker(spec: TrackerSpec) -> Optional[TrackerDescription]:
    """`spec` resolved without building the network: from a safetensors header, or from the
    model preset of a random-init spec. None for torch checkpoints (their metadata sits inside
    the pickle: only `build_tracker` reads them)."""
    if not spec.checkpoint:
        return complete_description(spec, model_config(preset=spec.model_preset), {})
    from mvlm.model.metadata import describe_model, safetensors_metadata

    path = checkpoint_path(spec)
    metadata = safetensors_metadata(path)
    if metadata is None:
        return None
    model_values = dict(spec.checkpoint_model or {})
    preset = model_values.pop("preset", None)
    model_cfg, meta = describe_model(metadata, "safetensors", str(path), preset, model_values or None)
    return complete_description(spec, model_cfg, meta)
