"""What a checkpoint file says about its network, read without torch: the model config of a
suite file's safetensors header, or the preset named for a foreign file (digest §6).

`load_model` builds the network from the same description, so a process that only needs to
know *which* tracker a checkpoint makes (to compare it with finished results) reads the header
here and never pays for torch or the weights."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Optional

from mvlm.config import ConfigError, ModelConfig, model_config


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the model; the message names the file."""


def is_safetensors(path: Path) -> bool:
    """safetensors files start with an 8-byte header length, then the JSON header."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def safetensors_metadata(path: str | Path) -> Optional[dict[str, str]]:
    """The `__metadata__` of a safetensors file (no tensor is read); None for other formats."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    if not is_safetensors(path):
        return None
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            return dict(fh.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - a damaged header is one clear message
        raise CheckpointError(f"{path}: cannot read checkpoint (truncated or corrupt file, or not a "
                              f"checkpoint): {type(exc).__name__}: {exc}") from exc


def config_from_metadata(metadata: dict[str, str], source: str) -> ModelConfig:
    if "model_config" not in metadata:
        raise CheckpointError(f"{source}: no model_config in the metadata; pass a preset")
    try:
        values = json.loads(metadata["model_config"])
        return model_config(values)
    except (json.JSONDecodeError, ConfigError) as exc:
        raise CheckpointError(f"{source}: bad model_config metadata: {exc}") from exc


def describe_model(metadata: dict[str, str], file_format: str, source: str, preset: str | None = None,
                   overrides: dict | None = None) -> tuple[ModelConfig, dict]:
    """(model config, meta) of a checkpoint from its metadata: the suite's own config, or
    `preset` + `overrides` for files without one (the released `.pth.tar`). `meta` is the file's
    metadata completed with `preset`, `mode` and `format`, as `load_model` returns it."""
    if preset is not None or "model_config" not in metadata:
        if preset is None:
            raise CheckpointError(f"{source}: no model config inside ({file_format} file); pass a preset")
        cfg = model_config(overrides or {}, preset=preset)
    else:
        cfg = config_from_metadata(metadata, source)
    cfg = dataclasses.replace(cfg, pretrained_backbone=None)
    meta = dict(metadata)
    meta.setdefault("preset", cfg.preset)
    meta.setdefault("mode", "tf" if cfg.template_free else "bbox")
    meta["format"] = file_format
    return cfg, meta
