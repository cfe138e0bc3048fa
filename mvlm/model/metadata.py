"""What a checkpoint file says about its network, read without torch: the model config of a
suite file's safetensors header, or the preset named for a foreign file (docs/paper-notes.md §6).

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


# keys of a model section (TrackerSpec.checkpoint_model, evaluate.checkpoint_model, the CLI,
# the UI's load request) that say how to load a file rather than what network to build
MODES = ("tf", "bbox")


def split_model_section(values: dict | None, source: str = "model section") -> tuple[dict, Optional[str], bool]:
    """{preset, mode, random_init, ...model overrides} -> (overrides incl. preset, mode, random_init).
    An explicit `template_free` counts as a stated mode."""
    values = dict(values or {})
    mode = values.pop("mode", None)
    random_init = bool(values.pop("random_init", False))
    if mode is not None and mode not in MODES:
        raise CheckpointError(f"{source}: mode must be 'tf' or 'bbox', got {mode!r}")
    if "template_free" in values:
        implied = "tf" if values["template_free"] else "bbox"
        if mode is not None and mode != implied:
            raise CheckpointError(f"{source}: mode {mode!r} contradicts template_free={values['template_free']}")
        mode = implied
    return values, mode, random_init


def model_section(preset: str | None = None, mode: str | None = None, text_weights: str | None = None,
                  random_init: bool = False) -> Optional[dict]:
    """The model section that CLI options / UI requests state (None when they state nothing)."""
    section: dict = {}
    if preset:
        section["preset"] = preset
    if mode:
        section["mode"] = mode
    if text_weights:
        section["text"] = {"weights": str(text_weights)}
    if random_init:
        section["random_init"] = True
    return section or None


def check_text_weights(cfg: ModelConfig, source: str, random_init: bool = False) -> None:
    """A frozen CLIP tower is not inside any checkpoint: its file must be given and exist, or
    random weights must be asked for. Raised before any weight is read."""
    text = cfg.text
    if not (text.tower and text.frozen):
        return  # no tower, or a trainable tower that the checkpoint carries
    if text.weights:
        if not Path(text.weights).is_file():
            raise CheckpointError(f"{text.weights}: CLIP text weights file not found (text.weights of {source}; "
                                  f"expected a {text.clip_model} text tower: OpenAI .pt, open_clip or HF file)")
    elif not random_init:
        raise CheckpointError(
            f"{source}: the {cfg.preset} network's frozen CLIP {text.clip_model} text tower is not stored in "
            "checkpoints: pass its weights (--text-weights FILE / text.weights; see docs/weights.md) or "
            "ask for a random tower explicitly (--random-init); nothing is made up silently")


def describe_model(metadata: dict[str, str], file_format: str, source: str, preset: str | None = None,
                   overrides: dict | None = None, mode: str | None = None,
                   random_init: bool = False) -> tuple[ModelConfig, dict]:
    """(model config, meta) of a checkpoint from its metadata: the suite's own config, or
    `preset` + `overrides` for files without one (the released `.pth.tar`). The mode (tf / bbox)
    is the file's own or the stated one, never guessed: released TF and BBOX files have the same
    keys. `overrides` may be a whole model section (`mode`, `random_init` keys). `meta` is the
    file's metadata completed with `preset`, `mode`, `format` (and `random_init` when asked for),
    as `load_model` returns it."""
    overrides, section_mode, section_random = split_model_section(overrides, source)
    if section_mode and mode and section_mode != mode:
        raise CheckpointError(f"{source}: mode {mode!r} contradicts the model section's {section_mode!r}")
    mode = mode or section_mode
    random_init = random_init or section_random
    preset = preset or overrides.pop("preset", None)
    file_mode = metadata.get("mode")
    if file_mode and mode and file_mode != mode:
        raise CheckpointError(f"{source}: the file is a {file_mode!r} checkpoint, but mode {mode!r} was stated")
    if preset is not None or "model_config" not in metadata:
        if preset is None:
            raise CheckpointError(f"{source}: no model config inside ({file_format} file); pass a preset "
                                  "(e.g. --checkpoint-preset base) and the mode (--mode tf|bbox)")
        mode = mode or file_mode
        if mode is None:
            raise CheckpointError(f"{source}: the file does not say whether it is a TF or a BBOX network "
                                  "(released MVLM_TF / MVLM_BBOX files have the same keys): pass the mode "
                                  "(--mode tf|bbox, or mode in the model section)")
        cfg = model_config({**overrides, "template_free": mode == "tf"}, preset=preset)
    else:
        cfg = config_from_metadata(metadata, source)
        if overrides:
            from mvlm.config import deep_merge, to_dict

            cfg = model_config(deep_merge(to_dict(cfg), overrides), preset=cfg.preset)
        if mode is not None and cfg.template_free != (mode == "tf"):
            raise CheckpointError(f"{source}: the file's model is {'tf' if cfg.template_free else 'bbox'}, "
                                  f"but mode {mode!r} was stated")
    cfg = dataclasses.replace(cfg, pretrained_backbone=None)
    check_text_weights(cfg, source, random_init)
    meta = dict(metadata)
    meta.setdefault("preset", cfg.preset)
    meta.setdefault("mode", "tf" if cfg.template_free else "bbox")
    meta["format"] = file_format
    if random_init and cfg.text.tower and cfg.text.frozen and not cfg.text.weights:
        meta["random_init"] = "text tower"  # carried into every result's checkpoint_meta
    return cfg, meta
