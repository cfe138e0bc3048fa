"""The MVLM network: Fast-iTPN encoder, CLIP text tower, CENTER head, checkpoint I/O.

Names are imported on first use (PEP 562), so that `mvlm.model.metadata` (a checkpoint's
description, no torch) can be read by a process that never builds a network."""

from __future__ import annotations

from mvlm.lazy import lazy_exports

_HOME = {
    "CheckpointError": "mvlm.model.metadata",
    "inspect_checkpoint": "mvlm.model.checkpoint", "load_model": "mvlm.model.checkpoint",
    "load_pretrained_backbone": "mvlm.model.checkpoint", "load_state_dict_strict": "mvlm.model.checkpoint",
    "read_checkpoint": "mvlm.model.checkpoint", "read_state_dict": "mvlm.model.checkpoint",
    "save_checkpoint": "mvlm.model.checkpoint",
    "all_boxes": "mvlm.model.head", "cal_bbox": "mvlm.model.head",
    "MVLMNet": "mvlm.model.net", "build_model": "mvlm.model.net", "count_parameters": "mvlm.model.net",
    "parameter_counts": "mvlm.model.net",
    "TextError": "mvlm.model.text", "tokenize": "mvlm.model.text",
}

__all__, __getattr__, __dir__ = lazy_exports('mvlm.model', _HOME)
