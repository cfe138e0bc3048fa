"""MVLMNet = Fast-iTPN encoder + text encoder + CENTER head (docs/paper-notes.md §1.1).

    text_emb (B, L, D)  = text_encoder(sentences)          (cached per sentence at inference)
    tokens              = [CLS][search][templates...][text] -> main blocks
    feat_x (B, F*F, D)  -> (B, D, F, F) -> CENTER head -> score/size/offset maps, pred_boxes

Submodule names (`encoder.body`, `text_encoder`, `head`) give the released state-dict keys.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mvlm.config import ModelConfig
from mvlm.model.fastitpn import FastITPN, count_parameters
from mvlm.model.head import CenterHead
from mvlm.model.text import TextEncoder

__all__ = ["MVLMNet", "build_model", "count_parameters", "parameter_counts"]


class Encoder(nn.Module):
    """Holder so the body's keys read `encoder.body.*` as in the released checkpoints."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.body = FastITPN(cfg.encoder, template_free=cfg.template_free)


class MVLMNet(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        dim = cfg.encoder.dims[-1]
        self.text_encoder = TextEncoder(cfg.text, out_dim=dim)
        self.head = CenterHead(dim, cfg.head)

    @property
    def template_free(self) -> bool:
        return self.encoder.body.template_free

    def encode_text(self, texts: Sequence[str]) -> torch.Tensor:
        """Sentences -> text_emb (B, L, D). In eval mode each sentence is encoded once and cached;
        in training mode it runs (with grad for a trainable tower) every call."""
        if self.training:
            return self.text_encoder(texts)
        return self.text_encoder.encode_cached(texts)

    def forward(self, search: torch.Tensor, templates: Sequence[torch.Tensor] | None = None,
                text_emb: torch.Tensor | None = None, text: Sequence[str] | None = None) -> dict:
        """search (B,C,S,S); templates list of (B,C,T,T) (ignored when template-free);
        text_emb (B,L,D) or raw `text` (B sentences).

        Returns feat_x (B,F*F,D), score_map (B,1,F,F), size_map (B,2,F,F), offset_map (B,2,F,F),
        pred_boxes (B,1,4) normalized cx,cy,w,h, tae/tbe (B,N,D) `[search][templates][text]`,
        feat_z (B,n·Nt,D) with templates, text_emb when it was computed here.
        """
        out: dict[str, torch.Tensor] = {}
        if text_emb is None:
            if text is None:
                raise ValueError("MVLMNet.forward needs text_emb or text (a sentence per sample)")
            if isinstance(text, str):
                text = [text]
            if len(text) != search.shape[0]:
                raise ValueError(f"{len(text)} sentences for a batch of {search.shape[0]} search images")
            text_emb = self.encode_text(text)
            out["text_emb"] = text_emb
        if text_emb.shape[0] != search.shape[0]:
            raise ValueError(f"text_emb batch {text_emb.shape[0]} != search batch {search.shape[0]}")
        out.update(self.encoder.body(search, None if self.template_free else templates, text_emb))
        feat = out["feat_x"]  # (B, F*F, D)
        side = int(round(feat.shape[1] ** 0.5))
        fmap = feat.transpose(1, 2).reshape(feat.shape[0], feat.shape[2], side, side)  # (B, D, F, F)
        out.update(self.head(fmap))
        return out


def build_model(cfg: ModelConfig) -> MVLMNet:
    """The network for `cfg`; loads the 3-channel Fast-iTPN file when `pretrained_backbone` is set."""
    model = MVLMNet(cfg)
    if cfg.pretrained_backbone:
        from mvlm.model.checkpoint import load_pretrained_backbone

        load_pretrained_backbone(model, cfg.pretrained_backbone, rule=cfg.patchembed_init)
    return model


def parameter_counts(model: MVLMNet) -> dict[str, int]:
    """Parameter elements per part (the text tower counted apart from text_proj)."""
    tower = model.text_encoder.clip
    return {
        "encoder": count_parameters(model.encoder),
        "head": count_parameters(model.head),
        "text_proj": count_parameters(model.text_encoder.text_proj),
        "text_tower": count_parameters(tower) if tower is not None else 0,
        "trainable": count_parameters(model, trainable_only=True),
        "total": count_parameters(model),
    }
