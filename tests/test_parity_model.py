"""Small-model forward parity with the reference recordings (fp32, 1e-5)."""

from __future__ import annotations

import json

import pytest
import torch

from mvlm.config import model_config
from mvlm.model import MVLMNet

TOL = 1e-5
OUTPUTS = ["feat_x", "tbe", "tae", "feat_z", "score_map", "size_map", "offset_map", "pred_boxes"]


def small_config(meta: dict, template_free: bool):
    """The small reference model through the normal config path (sizes from the meta file)."""
    hp = meta["encoder_hyper_parameters"]
    dim = hp["embed_dim"]
    return model_config({
        "template_free": template_free,
        "encoder": {
            "in_chans": hp["in_chans"],
            "dims": [dim // 4, dim // 2, dim],
            "depths": [hp["depth_stage1"], hp["depth_stage2"], hp["depth"]],
            "num_heads": hp["num_heads"],
            "mlp_ratio": hp["mlp_ratio"],
            "bridge_mlp_ratio": hp["bridge_mlp_ratio"],
            "layer_scale_init": hp["init_values"],
            "drop_path_rate": hp["drop_path_rate"],
            "norm_eps": hp["layernorm_eps"],
            "search_size": hp["search_size"],
            "template_size": hp["template_size"],
        },
        "text": {"tower": False, "width": meta["text_proj"]["in_features"]},
        "head": {"channels": meta["head_hyper_parameters"]["channel"]},
    })


@pytest.fixture(scope="module")
def fixture(parity_dir):
    from safetensors.torch import load_file

    meta = json.loads((parity_dir / "small_model_meta.json").read_text())
    return {
        "meta": meta,
        "weights": load_file(str(parity_dir / "small_model_state_dict.safetensors")),
        "io": load_file(str(parity_dir / "small_forward_io.safetensors")),
        "inter": load_file(str(parity_dir / "small_forward_intermediates_tf.safetensors")),
    }


def _model(fixture, template_free: bool) -> MVLMNet:
    model = MVLMNet(small_config(fixture["meta"], template_free)).eval()
    model.load_state_dict(fixture["weights"], strict=True)
    return model


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return (a.double() - b.double()).abs().max().item()


def test_small_model_keys_in_reference_order(fixture):
    model = _model(fixture, True)
    assert list(model.state_dict()) == fixture["meta"]["weights"]["state_dict_order"]


@pytest.mark.parametrize("mode", ["tf", "bbox"])
def test_forward_matches_reference(fixture, mode):
    io = fixture["io"]
    model = _model(fixture, template_free=(mode == "tf"))
    with torch.no_grad():
        text_emb = model.text_encoder.project(io["input.clip_hidden"])
        out = model(io["input.search"], [io["input.template_0"], io["input.template_1"]], text_emb=text_emb)
    assert _max_diff(text_emb, io[f"{mode}.out.text_emb"]) <= TOL
    checked = 0
    for key in OUTPUTS:
        ref = io.get(f"{mode}.out.{key}")
        if ref is None:
            assert key not in out or mode == "bbox"
            continue
        assert _max_diff(out[key], ref) <= TOL, key
        checked += 1
    assert checked == (8 if mode == "bbox" else 7)
    assert ("feat_z" in out) == (mode == "bbox")


def test_encoder_intermediates_match(fixture):
    io, inter = fixture["io"], fixture["inter"]
    body = _model(fixture, True).encoder.body
    with torch.no_grad():
        x = body.patch_embed(io["input.search"])
        assert _max_diff(x, inter["patch_embed"]) <= TOL
        for i, block in enumerate(body.conv_blocks):
            x = block(x)
            assert _max_diff(x, inter[f"blocks.{i}"]) <= TOL, i
        text_emb = _model(fixture, True).text_encoder.project(io["input.clip_hidden"])
        tokens, _ = body.assemble_tokens(io["input.search"], None, text_emb)
        first = len(body.conv_blocks)
        for i, block in enumerate(body.main_blocks):
            tokens = block(tokens)
            assert tokens.shape == (1, 274, 64)
            assert _max_diff(tokens, inter[f"blocks.{first + i}"]) <= TOL, first + i
