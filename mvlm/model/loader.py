"""What a weights file is, and turning it into one safetensors file (`mvlm weights`), plus the
checkpoint list of the UI server. Loading a network is `mvlm.model.checkpoint.load_model`, the
one loader every entry point uses (through `build_tracker`); see docs/weights.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Optional

from mvlm.model.metadata import CheckpointError, safetensors_metadata

CHECKPOINT_SUFFIXES = (".safetensors", ".pth.tar", ".pth")


def file_sha256(path: str | Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def list_checkpoints(folder: str | Path, relative_to: str | Path | None = None) -> list[dict[str, Any]]:
    """MVLM checkpoints under `folder` with the preset and mode their metadata states; files that
    state none (released .pth.tar) say so. Other safetensors files (CLIP weights) are left out.
    No tensor is read."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    base = Path(relative_to) if relative_to else folder.parent
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name.endswith(CHECKPOINT_SUFFIXES)):
        try:
            metadata = safetensors_metadata(path)
        except CheckpointError as exc:
            found.append({"path": str(path.relative_to(base)), "error": str(exc)})
            continue
        if metadata is not None and metadata.get("format") != "mvlm":
            continue
        entry: dict[str, Any] = {"path": str(path.relative_to(base)), "format": "safetensors" if metadata is not None else "torch"}
        if metadata:
            entry.update(preset=metadata.get("preset"), mode=metadata.get("mode"))
        else:
            entry.update(preset=None, mode="unknown: state mode (tf or bbox) and preset")
        found.append(entry)
    return found


@dataclasses.dataclass
class WeightsReport:
    path: str
    sha256: str
    layout: str  # safetensors | torch-zip | torchscript | torch-legacy, + CLIP text layout
    num_tensors: int
    fits: list[str]  # human-readable: what this file can be loaded as
    details: dict[str, Any]


def _fastitpn_blocks(state: dict) -> int:
    """Number of Fast-iTPN blocks of a pretrained encoder file (0 when it is not one)."""
    for prefix in ("", "backbone.", "body.", "model."):
        if f"{prefix}patch_embed.proj.weight" in state:
            return len({k[len(prefix):].split(".")[1] for k in state if k.startswith(f"{prefix}blocks.")})
    return 0


def _fits_mvlm(state: dict, metadata: dict) -> list[str]:
    import torch

    from mvlm.config import MODEL_PRESETS, model_config
    from mvlm.model.checkpoint import compare_keys, expected_shapes
    from mvlm.model.net import MVLMNet

    if "model_config" in metadata:
        return [f"MVLM checkpoint, preset {metadata.get('preset')}, mode {metadata.get('mode')} (from its metadata)"]
    fits = []
    for preset in MODEL_PRESETS:
        cfg = model_config(preset=preset)
        with torch.device("meta"):
            net = MVLMNet(dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, weights=None)))
        if compare_keys(expected_shapes(net), state).ok:
            fits.append(f"MVLM checkpoint, preset {preset}, mode not stated in the file: load it with "
                        f"--checkpoint-preset {preset} --mode tf|bbox")
    return fits


def inspect_weights(path: str | Path) -> WeightsReport:
    """Layout, sha256 and what a file fits: a CLIP text tower (width / layers / context), a
    Fast-iTPN backbone, an MVLM checkpoint of a preset. Errors name the file."""
    from mvlm.model.checkpoint import extract_state_dict, read_checkpoint
    from mvlm.model.text import TextError, clip_text_shape, read_clip_text_state

    path = Path(path)
    obj, info = read_checkpoint(path)
    state = extract_state_dict(obj, str(path))
    layout = info["format"]
    fits: list[str] = []
    details: dict[str, Any] = {"format": info["format"], "metadata": info["metadata"],
                               "opaque_classes": info["opaque_classes"]}
    try:
        text_layout, text_state = read_clip_text_state(path)
    except TextError:
        text_layout = None
    if text_layout:
        shape = clip_text_shape(text_state, str(path))
        details["clip_text"] = {"layout": text_layout, **shape}
        layout = f"{info['format']}, CLIP text in {text_layout} layout"
        name = " (ViT-L/14 text)" if (shape["width"], shape["layers"]) == (768, 12) else ""
        fits.append(f"CLIP text tower{name}: width {shape['width']}, {shape['layers']} layers, "
                    f"context {shape['context_length']}, vocabulary {shape['vocab_size']} (heads are not "
                    f"stored: CLIP uses width/64 = {shape['heads']})")
    blocks = _fastitpn_blocks(state)
    if blocks:
        fits.append(f"Fast-iTPN backbone ({blocks} blocks): model.pretrained_backbone")
    if any(k.startswith("encoder.body.") for k in state):
        fits += _fits_mvlm(state, info["metadata"]) or ["MVLM-like keys, but no preset fits: see `mvlm checkpoint inspect`"]
    return WeightsReport(str(path), file_sha256(path), layout, len(state), fits, details)


def convert_weights(path: str | Path, out: str | Path) -> tuple[Path, str]:
    """One safetensors file from any readable file: a CLIP file becomes its text tower in
    open_clip names (what text.weights loads fastest); any other file its state dict.
    Returns (out, what was written)."""
    from safetensors.torch import save

    from mvlm.atomic import write_bytes
    from mvlm.model.checkpoint import read_state_dict
    from mvlm.model.text import TextError, read_clip_text_state

    path, out = Path(path), Path(out)
    if out.suffix != ".safetensors":
        raise CheckpointError(f"{out}: the output must be a .safetensors file")
    try:
        layout, state = read_clip_text_state(path)
        what = f"CLIP text tower from the {layout} layout, open_clip names"
        metadata = {"format": "clip-text", "source_layout": layout}
    except TextError as exc:
        if "not found" in str(exc):
            raise
        state = read_state_dict(path)
        what, metadata = "state dict", {"format": "state-dict"}
    metadata["source_sha256"] = file_sha256(path)
    tensors = {k: v.detach().contiguous().clone() for k, v in state.items()}
    write_bytes(out, save(tensors, metadata=metadata))
    return out, what
