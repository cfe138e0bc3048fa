"""The MVLM network: Fast-iTPN encoder, CLIP text tower, CENTER head, checkpoint I/O."""

from mvlm.model.checkpoint import (
    CheckpointError,
    inspect_checkpoint,
    load_model,
    load_pretrained_backbone,
    load_state_dict_strict,
    read_checkpoint,
    read_state_dict,
    save_checkpoint,
)
from mvlm.model.head import all_boxes, cal_bbox
from mvlm.model.net import MVLMNet, build_model, count_parameters, parameter_counts
from mvlm.model.text import TextError, tokenize

__all__ = [
    "CheckpointError", "MVLMNet", "TextError", "all_boxes", "build_model", "cal_bbox",
    "count_parameters", "inspect_checkpoint", "load_model", "load_pretrained_backbone",
    "load_state_dict_strict", "parameter_counts", "read_checkpoint", "read_state_dict",
    "save_checkpoint", "tokenize",
]
