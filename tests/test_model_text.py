"""Text branch: tokenizer truncation, pooling, frozen/trainable tower, cache, local weights."""

from __future__ import annotations

import pytest
import torch

from mvlm.config import TextConfig
from mvlm.model.text import TextEncoder, TextError, load_clip_text_weights, tokenize

SOT, EOT = 49406, 49407
SMALL = dict(clip_model="ViT-B-32", context_length=16, width=64, layers=2, heads=2)


def _encoder(**kw) -> TextEncoder:
    torch.manual_seed(0)
    return TextEncoder(TextConfig(**{**SMALL, **kw}), out_dim=32)


def test_tokenize_pads_and_truncates_keeping_eot():
    ids = tokenize(["a red car", "a red car " * 20], "ViT-B-32", 16)
    assert ids.shape == (2, 16)
    assert ids[0, :5].tolist() == [SOT, 320, 736, 1615, EOT] and ids[0, 5:].eq(0).all()
    assert ids[1, 0] == SOT and ids[1, -1] == EOT  # truncated, EOT survives
    assert (ids[1] != 0).all()


@pytest.mark.parametrize("bad", ["", "   ", None])
def test_empty_sentence_is_a_clear_error(bad):
    with pytest.raises(TextError, match="sentence 1"):
        tokenize(["ok", bad], "ViT-B-32", 16)


def test_pooling_modes():
    texts = ["a red car", "the small blue square on the left"]
    full = _encoder(pooling="full").eval()
    eos = _encoder(pooling="eos_only").eval()
    wo_pad = _encoder(pooling="wo_pad").eval()
    with torch.no_grad():
        a, b, c = full(texts), eos(texts), wo_pad(texts)
    longest = int(tokenize(texts, "ViT-B-32", 16).argmax(-1).max()) + 1
    assert a.shape == (2, 16, 32) and b.shape == (2, 1, 32) and c.shape == (2, longest, 32)
    assert torch.allclose(c, a[:, :longest], atol=1e-6)  # same weights (same seed)
    assert torch.allclose(b[0, 0], a[0, 4], atol=1e-6)  # EOT of "a red car" is token 4


def test_frozen_tower_is_excluded_and_gets_no_grad():
    enc = _encoder(frozen=True).train()
    assert not enc.clip.training  # stays in eval even in train mode
    assert all(k.startswith("text_proj.") for k in enc.state_dict())
    out = enc(["a red car"])
    out.sum().backward()
    assert enc.text_proj.weight.grad is not None
    assert all(p.grad is None and not p.requires_grad for p in enc.clip.parameters())
    other = _encoder(frozen=True)
    other.load_state_dict(enc.state_dict(), strict=True)  # no clip keys needed


def test_trainable_tower_is_saved():
    enc = _encoder(frozen=False)
    keys = list(enc.state_dict())
    assert "clip.token_embedding.weight" in keys and "text_proj.weight" in keys
    assert not any("ln_final" in k for k in keys)  # never applied, so not a parameter


def test_cache_encodes_each_sentence_once():
    enc = _encoder().eval()
    first = enc.encode_cached(["a red car", "a blue box", "a red car"])
    assert first.shape == (3, 16, 32) and len(enc._cache) == 2
    assert torch.equal(first[0], first[2])
    with torch.no_grad():
        assert torch.allclose(first, enc(["a red car", "a blue box", "a red car"]), atol=1e-6)
    enc.train()
    assert not enc._cache


def test_weights_from_local_file_with_longer_context(tmp_path):
    """An OpenAI-layout CLIP file (77 positions, vision keys) loads into a 16-token tower; the
    first 16 hidden states equal the 77-token tower's (causal attention)."""
    from safetensors.torch import save_file

    long = _encoder(context_length=77)
    state = {k: v for k, v in long.clip.state_dict().items()}
    state["visual.proj"] = torch.zeros(3)
    state["ln_final.weight"] = torch.ones(64)
    path = tmp_path / "clip.safetensors"
    save_file(state, str(path))
    short = TextEncoder(TextConfig(**{**SMALL, "weights": str(path)}), out_dim=32)
    ids77 = tokenize(["a red car"], "ViT-B-32", 77)
    with torch.no_grad():
        h77 = long.hidden_states(ids77)
        h16 = short.hidden_states(ids77[:, :16])
    assert torch.allclose(h16, h77[:, :16], atol=1e-5)


def test_bad_weights_files(tmp_path):
    from safetensors.torch import save_file

    tower = _encoder().clip
    with pytest.raises(ValueError, match="not found"):
        load_clip_text_weights(tower, tmp_path / "nope.pt")
    save_file({"foo": torch.zeros(1)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(TextError, match="no CLIP text tower"):
        load_clip_text_weights(tower, tmp_path / "x.safetensors")


def test_no_tower_mode_needs_text_emb():
    enc = TextEncoder(TextConfig(tower=False, width=48), out_dim=8)
    assert enc.project(torch.zeros(1, 3, 48)).shape == (1, 3, 8)
    with pytest.raises(TextError, match="no CLIP tower"):
        enc(["a red car"])
