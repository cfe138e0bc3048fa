"""Text branch (docs/paper-notes.md §1.3): CLIP text tower via open_clip, pooling, and `text_proj`.

    sentence --CLIP BPE (truncated to L, EOT kept)--> ids (B, L)
             --token + position embedding, causal transformer--> hidden (B, L, W)
               (no ln_final and no CLIP text_projection, as in the reference)
             --pooling: full (B,L,W) | eos_only (B,1,W) | wo_pad (B, max EOT index + 1, W)
             --text_proj Linear(W -> D)--> text_emb (B, L', D)

The tower is `text_encoder.clip` (an open_clip TextTransformer built without the vision tower)
and the projection `text_encoder.text_proj`. A frozen tower runs under no_grad in eval mode and
is left out of `state_dict()`: checkpoints never carry it; it comes from `TextConfig.weights`.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Sequence

import torch
from timm.layers import trunc_normal_
from torch import nn

from mvlm.config import TextConfig


class TextError(ValueError):
    """Bad sentence or bad text-tower weights."""


# --------------------------------------------------------------------------------------------
# open_clip glue: the only place that touches open_clip's (version-pinned) private builder


def clip_text_config(cfg: TextConfig) -> dict:
    """open_clip `text_cfg` of `cfg.clip_model` with our width/layers/heads/context overrides."""
    import open_clip

    model_cfg = open_clip.get_model_config(cfg.clip_model)
    if model_cfg is None or "text_cfg" not in model_cfg:
        raise TextError(f"text.clip_model: {cfg.clip_model!r} is not an open_clip model config with a text tower")
    text_cfg = dict(model_cfg["text_cfg"])
    text_cfg["context_length"] = cfg.context_length
    for key in ("width", "layers", "heads"):
        if getattr(cfg, key):
            text_cfg[key] = getattr(cfg, key)
    if text_cfg.get("hf_model_name"):
        raise TextError(f"text.clip_model: {cfg.clip_model!r} uses a Hugging Face text tower; only CLIP towers are supported")
    return text_cfg


def build_clip_text_tower(cfg: TextConfig) -> nn.Module:
    """An open_clip TextTransformer alone (no vision tower, no output projection)."""
    from open_clip.model import _build_text_tower  # private in open_clip 3.3.0 (pinned)

    text_cfg = clip_text_config(cfg)
    text_cfg["proj_type"] = "none"  # CLIP's text_projection is never used
    tower = _build_text_tower(embed_dim=0, text_cfg=text_cfg, quick_gelu=cfg.quick_gelu)
    # ln_final is not applied (the reference feeds pre-LN hidden states): drop it so a trainable
    # tower has no parameter without gradient (DDP would stall on it)
    tower.ln_final = nn.Identity()
    return tower


@functools.lru_cache(maxsize=8)
def get_tokenizer(clip_model: str, context_length: int):
    """open_clip's CLIP BPE tokenizer (vocabulary ships in the wheel: works offline)."""
    import open_clip

    return open_clip.get_tokenizer(clip_model, context_length=context_length)


def tokenize(texts: Sequence[str], clip_model: str, context_length: int) -> torch.Tensor:
    """Sentences -> ids (B, L) with [SOT] ... [EOT] 0-padding; longer sentences are cut to L
    tokens with the EOT token kept as the last one. Empty sentences are an error."""
    if isinstance(texts, str):
        texts = [texts]
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TextError(f"sentence {i}: expected str, got {type(text).__name__}")
        if not text.strip():
            raise TextError(f"sentence {i} is empty: the tracker needs a language description")
    if context_length < 2:
        raise TextError(f"text.context_length={context_length}: needs room for SOT and EOT")
    ids = get_tokenizer(clip_model, context_length)(list(texts), context_length=context_length)
    return ids.long()


# --------------------------------------------------------------------------------------------
# CLIP weights from a local file


# the three layouts of CLIP text weights (docs/weights.md):
#   openai-torchscript  OpenAI's ViT-L-14.pt (what clip.load caches in ~/.cache/clip), read as data
#   open_clip           a state dict in open_clip / OpenAI names (token_embedding.weight, transformer.resblocks.N...)
#   hf                  Hugging Face openai/clip-vit-large-patch14 (text_model.* names)
_TOWER_PREFIXES = ("", "text.", "model.", "module.", "clip.", "text_encoder.clip.")
_HF_PREFIX = "text_model."
_HF_BLOCK = {  # HF name inside encoder.layers.N -> open_clip name inside transformer.resblocks.N
    "self_attn.out_proj": "attn.out_proj", "layer_norm1": "ln_1", "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj",
}


def hf_to_open_clip(state: dict[str, torch.Tensor], source: str = "weights") -> dict[str, torch.Tensor]:
    """Hugging Face CLIPTextModel names -> open_clip names; q/k/v projections are stacked into
    `attn.in_proj_weight` / `in_proj_bias` (q, k, v order, as nn.MultiheadAttention keeps them)."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        if key.startswith("text_projection."):  # HF Linear(width, embed): weight is open_clip's transposed
            out["text_projection"] = value.t()
            continue
        if not key.startswith(_HF_PREFIX):
            continue  # vision tower, logit_scale, ...
        key = key[len(_HF_PREFIX):]
        if key == "embeddings.token_embedding.weight":
            out["token_embedding.weight"] = value
        elif key == "embeddings.position_embedding.weight":
            out["positional_embedding"] = value
        elif key.startswith("final_layer_norm."):
            out["ln_final." + key.split(".", 1)[1]] = value
        elif key.startswith("encoder.layers."):
            index, rest = key[len("encoder.layers."):].split(".", 1)
            module, param = rest.rsplit(".", 1)
            if module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"):
                qkv.setdefault((index, param), {})[module[-6]] = value
            elif module in _HF_BLOCK:
                out[f"transformer.resblocks.{index}.{_HF_BLOCK[module]}.{param}"] = value
    for (index, param), parts in qkv.items():
        if sorted(parts) != ["k", "q", "v"]:
            raise TextError(f"{source}: layer {index} lacks one of q/k/v_proj.{param}")
        out[f"transformer.resblocks.{index}.attn.in_proj_{param}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def read_clip_text_state(path: str | Path) -> tuple[str, dict[str, torch.Tensor]]:
    """(layout, state) of a CLIP weights file in any of the three layouts: the text-tower tensors
    in open_clip names (no prefix, fp32; `ln_final.*` and `text_projection` when present).
    Never runs code from the file. Errors name the file."""
    from mvlm.model.checkpoint import read_checkpoint, extract_state_dict  # late: checkpoint imports net

    path = Path(path)
    if not path.is_file():
        raise TextError(f"{path}: CLIP text weights file not found")
    obj, info = read_checkpoint(path)
    state = extract_state_dict(obj, str(path))
    if f"{_HF_PREFIX}embeddings.token_embedding.weight" in state:
        layout, state = "hf", hf_to_open_clip(state, str(path))
    else:
        for prefix in _TOWER_PREFIXES:
            if f"{prefix}token_embedding.weight" in state:
                break
        else:
            raise TextError(f"{path}: no CLIP text tower found (no 'token_embedding.weight' nor "
                            f"'{_HF_PREFIX}embeddings.token_embedding.weight' key)")
        layout = "openai-torchscript" if info["format"] == "torchscript" else "open_clip"
        state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix) and not k[len(prefix):].startswith("visual.")}
    keep = ("token_embedding.", "positional_embedding", "transformer.resblocks.", "ln_final.", "text_projection")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items() if k.startswith(keep)
             and not k.endswith("attn_mask")}
    return layout, state


def clip_text_shape(state: dict[str, torch.Tensor], source: str = "weights") -> dict[str, int]:
    """Width, layers, context and vocabulary; heads are not stored in weights: width / 64, as in
    every OpenAI CLIP text tower."""
    try:
        vocab, width = state["token_embedding.weight"].shape
        context = state["positional_embedding"].shape[0]
    except (KeyError, ValueError) as exc:
        raise TextError(f"{source}: not a CLIP text tower ({exc})") from exc
    layers = len({k.split(".")[2] for k in state if k.startswith("transformer.resblocks.")})
    return {"width": int(width), "layers": layers, "heads": max(1, int(width) // 64),
            "context_length": int(context), "vocab_size": int(vocab)}


def _text_tower_state(state: dict[str, torch.Tensor], tower: nn.Module, path: Path) -> dict[str, torch.Tensor]:
    """The tower's tensors out of a CLIP text state (open_clip names); crop the position table
    when our context is shorter than the file's."""
    wanted = tower.state_dict()
    picked = {k: state[k] for k in wanted if k in state}
    missing = [k for k in wanted if k not in picked]
    if missing:
        raise TextError(f"{path}: text tower tensors missing: {', '.join(missing[:8])}"
                        + (f" (+{len(missing) - 8} more)" if len(missing) > 8 else ""))
    pos = picked["positional_embedding"]
    want = wanted["positional_embedding"].shape[0]
    if pos.shape[0] >= want:
        # causal attention: the first L positions see exactly what they saw in the longer context
        picked["positional_embedding"] = pos[:want]
    bad = [f"{k}: file {tuple(v.shape)} vs tower {tuple(wanted[k].shape)}"
           for k, v in picked.items() if tuple(v.shape) != tuple(wanted[k].shape)]
    if bad:
        raise TextError(f"{path}: CLIP text tower does not fit the text config: {'; '.join(bad[:5])}")
    return picked


def load_clip_text_weights(tower: nn.Module, path: str | Path) -> str:
    """Load CLIP text weights from a local file in any supported layout (never downloads);
    returns the layout found."""
    path = Path(path)
    layout, state = read_clip_text_state(path)
    tower.load_state_dict(_text_tower_state(state, tower, path), strict=True)
    return layout


# --------------------------------------------------------------------------------------------
# the module


class TextEncoder(nn.Module):
    """CLIP text tower (`clip`) + projection (`text_proj`) with pooling and a sentence cache."""

    def __init__(self, cfg: TextConfig, out_dim: int):
        super().__init__()
        self.cfg = cfg
        if cfg.tower:
            self.clip = build_clip_text_tower(cfg)
            width = self.clip.width
            if cfg.weights:
                load_clip_text_weights(self.clip, cfg.weights)
        else:
            if cfg.width <= 0:
                raise TextError("text.tower=false needs text.width > 0 (width of the given hidden states)")
            self.clip = None
            width = cfg.width
        self.width = width
        self.text_proj = nn.Linear(width, out_dim)
        trunc_normal_(self.text_proj.weight, std=0.02)
        nn.init.zeros_(self.text_proj.bias)
        self._cache: dict[str, torch.Tensor] = {}
        if self.clip is not None and not cfg.train_token_embedding:
            self.clip.token_embedding.requires_grad_(False)  # kept in checkpoints: it may be random
        if self.frozen:
            self.clip.requires_grad_(False)
            self.clip.eval()
            self._register_state_dict_hook(_drop_frozen_tower_keys)
            self.register_load_state_dict_post_hook(_ignore_missing_frozen_tower_keys)

    @property
    def frozen(self) -> bool:
        return self.clip is not None and self.cfg.frozen

    def train(self, mode: bool = True) -> "TextEncoder":
        super().train(mode)
        if self.frozen:
            self.clip.eval()  # a frozen tower never switches to training behaviour
        self._cache.clear()
        return self

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        """ids (B, L) on the module's device."""
        ids = tokenize(texts, self.cfg.clip_model, self.cfg.context_length)
        return ids.to(self.text_proj.weight.device)

    def hidden_states(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, L) -> per-token hidden states (B, L, W) without ln_final / text_projection."""
        if self.clip is None:
            raise TextError("this model has no CLIP tower (text.tower=false): pass text_emb instead of sentences")
        seq = ids.shape[1]
        x = self.clip.token_embedding(ids) + self.clip.positional_embedding[:seq]  # (B, L, W)
        mask = self.clip.attn_mask
        mask = None if mask is None else mask[:seq, :seq].to(x.dtype)
        return self.clip.transformer(x, attn_mask=mask).to(self.text_proj.weight.dtype)

    def set_half(self, enabled: bool = True) -> None:
        """Run the frozen CLIP tower in fp16 (what the reference's clip.load does on CUDA);
        text_proj and everything after it stay fp32."""
        if self.clip is None or not self.frozen:
            raise TextError("only a frozen CLIP tower can run in fp16")
        self.clip.to(torch.float16 if enabled else torch.float32)
        self._cache.clear()

    def pool(self, hidden: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Token selection (SLICING_MODE): full | eos_only | wo_pad. The EOT id is the largest."""
        eot = ids.argmax(dim=-1)  # (B,)
        if self.cfg.pooling == "full":
            return hidden
        if self.cfg.pooling == "eos_only":
            return hidden[torch.arange(hidden.shape[0], device=hidden.device), eot].unsqueeze(1)
        return hidden[:, : int(eot.max()) + 1]

    def project(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, L, W) hidden states -> (B, L, D) encoder tokens."""
        if hidden.shape[-1] != self.width:
            raise TextError(f"text hidden states have width {hidden.shape[-1]}, text_proj expects {self.width}")
        return self.text_proj(hidden)

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Sentences -> text_emb (B, L', D)."""
        ids = self.tokenize(texts)
        if self.frozen:
            with torch.no_grad():
                hidden = self.hidden_states(ids)
        else:
            hidden = self.hidden_states(ids)
        return self.project(self.pool(hidden, ids))

    def encode_cached(self, texts: Sequence[str]) -> torch.Tensor:
        """Inference: like forward, without grad, one tower pass per distinct sentence."""
        if isinstance(texts, str):
            texts = [texts]
        todo = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if todo:
            with torch.no_grad():
                for text, emb in zip(todo, self.forward(todo)):
                    self._cache[text] = emb
        rows = [self._cache[t] for t in texts]
        if len({r.shape[0] for r in rows}) > 1:  # wo_pad: lengths differ per sentence
            with torch.no_grad():
                return self.forward(list(texts))
        return torch.stack(rows)

    def clear_cache(self) -> None:
        self._cache.clear()


def _drop_frozen_tower_keys(module: TextEncoder, state: dict, prefix: str, local_metadata) -> None:
    for key in [k for k in state if k.startswith(prefix + "clip.")]:
        del state[key]


def _ignore_missing_frozen_tower_keys(module: TextEncoder, incompatible) -> None:
    # frozen tower weights come from TextConfig.weights, never from a tracker checkpoint
    kept = [k for k in incompatible.missing_keys if ".clip." not in f".{k}" and not k.startswith("clip.")]
    incompatible.missing_keys[:] = kept
    module.clear_cache()
