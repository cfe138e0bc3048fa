"""Checkpoint I/O: restricted unpickling, safetensors round trip, pretrained conversion, CLI."""

from __future__ import annotations

import json
import os
import sys
import types

import pytest
import torch

from mvlm.config import model_config
from mvlm.model import CheckpointError, MVLMNet, inspect_checkpoint, load_model, save_checkpoint
from mvlm.model.checkpoint import (
    Opaque,
    convert_pos_embed,
    expand_patch_embed,
    load_pretrained_backbone,
    read_checkpoint,
    read_state_dict,
)

TINY_FROZEN = {"text": {"frozen": True}}


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return MVLMNet(model_config({}, preset="tiny")).eval()


def _released_style(tmp_path, net_state):
    """A file like the authors' MVLM_ep*.pth.tar: net + optimizer + objects of foreign classes."""
    fake = types.ModuleType("lib_fake_stats")

    class AverageMeter:
        def __init__(self):
            self.avg, self.count = 0.5, 3

    AverageMeter.__module__ = "lib_fake_stats"
    AverageMeter.__qualname__ = "AverageMeter"
    fake.AverageMeter = AverageMeter
    sys.modules["lib_fake_stats"] = fake
    try:
        ckpt = {"epoch": 300, "actor_type": "MVLM_Actor", "net": net_state,
                "optimizer": {"state": {0: {"step": torch.tensor(5.0), "exp_avg": torch.ones(3)}},
                              "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0]}]},
                "stats": {"train": {"Loss": AverageMeter()}}}
        path = tmp_path / "MVLM_ep0300.pth.tar"
        torch.save(ckpt, path)
    finally:
        del sys.modules["lib_fake_stats"]
    return path


def test_released_style_file_loads_without_importing(tmp_path, tiny):
    path = _released_style(tmp_path, {"module." + k: v for k, v in tiny.state_dict().items()})
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)  # what the restricted reader must get around
    obj, info = read_checkpoint(path)
    assert info["format"] == "torch-zip" and info["opaque_classes"] == ["lib_fake_stats.AverageMeter"]
    meter = obj["stats"]["train"]["Loss"]
    assert isinstance(meter, Opaque) and meter.state == {"avg": 0.5, "count": 3}
    assert obj["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    with pytest.raises(CheckpointError, match="pass the mode"):
        load_model(path, preset="tiny")  # TF and BBOX files have the same keys: never guessed
    model, meta = load_model(path, preset="tiny", mode="tf")
    for key, value in tiny.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    assert meta["format"] == "torch-zip"


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_reduce_payload_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"net": {"w": torch.arange(4.0)}, "x": _Evil(marker)}, path)
    obj, info = read_checkpoint(path)
    assert not marker.exists()
    assert isinstance(obj["x"], Opaque)
    assert info["opaque_classes"] == [f"{os.system.__module__}.system"]
    assert obj["x"].args == (f"touch {marker}",)
    assert read_state_dict(path)["w"].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_bare_state_dict_and_legacy_format(tmp_path):
    state = {"a": torch.arange(6.0).reshape(2, 3).t(), "b": torch.tensor(7, dtype=torch.int64)}
    torch.save(state, tmp_path / "bare.pt")
    got = read_state_dict(tmp_path / "bare.pt")
    assert torch.equal(got["a"], state["a"]) and got["b"].item() == 7  # strides kept
    torch.save(state, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    obj, info = read_checkpoint(tmp_path / "legacy.pt")
    assert info["format"] == "torch-legacy" and torch.equal(obj["a"], state["a"])


def test_safetensors_round_trip_trainable_tower(tmp_path, tiny):
    path = save_checkpoint(tiny, tmp_path / "m.safetensors", mode="tf", tracker_preset="tf")
    model, meta = load_model(path)
    assert meta["preset"] == "tiny" and meta["mode"] == "tf" and meta["tracker_preset"] == "tf"
    assert json.loads(meta["model_config"])["encoder"]["dims"] == [32, 64, 128]
    assert "text_encoder.clip.token_embedding.weight" in model.state_dict()
    x, emb = torch.randn(1, 6, 128, 128), torch.randn(1, 16, 128)
    with torch.no_grad():
        assert torch.equal(model(x, text_emb=emb)["score_map"], tiny(x, text_emb=emb)["score_map"])


def test_frozen_tower_not_saved(tmp_path):
    model = MVLMNet(model_config(TINY_FROZEN, preset="tiny"))
    path = save_checkpoint(model, tmp_path / "f.safetensors", mode="bbox")
    keys = read_state_dict(path)
    assert not any(k.startswith("text_encoder.clip.") for k in keys)
    assert "text_encoder.text_proj.weight" in keys
    with pytest.raises(CheckpointError, match="frozen CLIP .*--text-weights"):
        load_model(path)  # no silent random text tower
    with pytest.raises(CheckpointError, match="nope.pt: CLIP text weights file not found"):
        load_model(path, text_weights=str(tmp_path / "nope.pt"))
    with pytest.raises(CheckpointError, match="file is a 'bbox' checkpoint"):
        load_model(path, mode="tf", random_init=True)
    loaded, meta = load_model(path, random_init=True)
    assert meta["mode"] == "bbox" and meta["random_init"] == "text tower"


def test_truncated_and_wrong_files(tmp_path, tiny):
    path = save_checkpoint(tiny, tmp_path / "m.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="cut.safetensors.*truncated or corrupt"):
        load_model(cut)
    zipped = tmp_path / "z.pth"
    torch.save({"net": tiny.state_dict()}, zipped)
    (tmp_path / "zcut.pth").write_bytes(zipped.read_bytes()[:20000])
    with pytest.raises(CheckpointError, match="zcut.pth"):
        read_checkpoint(tmp_path / "zcut.pth")
    with pytest.raises(CheckpointError, match="not found"):
        read_checkpoint(tmp_path / "missing.pth")


def test_mismatch_lists_missing_unexpected_misshaped(tmp_path, tiny):
    state = dict(tiny.state_dict())
    del state["head.conv5_ctr.bias"]
    state["extra.weight"] = torch.zeros(1)
    state["encoder.body.pos_embed"] = torch.zeros(1, 3, 128)
    torch.save({"net": state}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError) as err:
        load_model(tmp_path / "bad.pth", preset="tiny", mode="tf")
    msg = str(err.value)
    assert "bad.pth" in msg and "1 missing: head.conv5_ctr.bias" in msg
    assert "1 unexpected: extra.weight" in msg and "encoder.body.pos_embed: file (1, 3, 128) vs model (1, 80, 128)" in msg
    with pytest.raises(CheckpointError, match="mis-shaped"):
        load_model(tmp_path / "bad.pth", preset="base", mode="tf", random_init=True)  # wrong architecture


def test_patch_embed_rules():
    w = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    init = torch.full((2, 6, 4, 4), -1.0)
    half = expand_patch_embed(w, 6, "halfcopy", init)
    assert torch.equal(half[:, :3], w / 2) and torch.equal(half[:, 3:], w / 2)
    x = torch.randn(1, 3, 8, 8)
    same = torch.nn.functional.conv2d(torch.cat([x, x], 1), half, stride=4)
    assert torch.allclose(same, torch.nn.functional.conv2d(x, w, stride=4), atol=1e-4)
    assert torch.equal(expand_patch_embed(w, 6, "copy", init)[:, 3:], w)
    rnd = expand_patch_embed(w, 6, "random", init)
    assert torch.equal(rnd[:, :3], w) and rnd[:, 3:].eq(-1).all()


def test_pos_embed_crop_and_interpolate():
    grid = torch.arange(14 * 14, dtype=torch.float32).reshape(1, 196, 1).expand(1, 196, 2)
    out = convert_pos_embed(grid, 14, 7)
    assert out.shape == (1, 196 + 49, 2)
    assert torch.equal(out[0, :196], grid[0])
    assert out[0, 196:203, 0].tolist() == [0, 1, 2, 3, 4, 5, 6]  # top-left row of the 14x14 grid
    assert out[0, 203, 0] == 14  # second row starts at 14
    with_cls = torch.cat([torch.full((1, 1, 2), 99.0), grid], 1)
    assert torch.equal(convert_pos_embed(with_cls, 14, 7), out)  # CLS row dropped
    big = convert_pos_embed(grid, 16, 7)
    assert big.shape == (1, 256 + 49, 2)
    assert big[0, 0, 0] == pytest.approx(0.0, abs=1e-4) and big[0, 255, 0] == pytest.approx(195.0, abs=1e-3)


def test_load_pretrained_backbone_nested(tmp_path, tiny):
    body = tiny.encoder.body.state_dict()
    pre = {k: v.clone() for k, v in body.items()}
    pre["patch_embed.proj.weight"] = torch.randn(32, 3, 4, 4)
    pre["pos_embed"] = torch.randn(1, 14 * 14, 128)
    pre["fpn.extra.weight"] = torch.zeros(2)
    torch.save({"model": pre}, tmp_path / "itpn.pt")
    model = MVLMNet(model_config({}, preset="tiny"))
    report = load_pretrained_backbone(model, tmp_path / "itpn.pt", rule="halfcopy")
    assert report.missing == [] and report.unexpected == ["fpn.extra.weight"]
    got = model.encoder.body
    assert torch.equal(got.patch_embed.proj.weight[:, 3:], pre["patch_embed.proj.weight"] / 2)
    grid = pre["pos_embed"][0].reshape(14, 14, 128)
    assert torch.equal(got.pos_embed[0, :64], grid[:8, :8].reshape(64, 128))
    assert torch.equal(got.pos_embed[0, 64:], grid[:4, :4].reshape(16, 128))
    first_block_key = next(k for k in body if k.startswith("blocks."))
    torch.save({"module": {first_block_key: torch.zeros(5)}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="mis-shaped"):
        load_pretrained_backbone(model, tmp_path / "bad.pt")


def test_inspect_and_cli(tmp_path, tiny, capsys):
    from mvlm.cli import main

    path = save_checkpoint(tiny, tmp_path / "m.safetensors")
    info = inspect_checkpoint(path)
    assert info["loads_strictly"] and info["against"] == "tiny"
    assert main(["checkpoint", "inspect", str(path)]) == 0
    capsys.readouterr()
    assert main(["checkpoint", "inspect", str(path), "--preset", "base", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["loads_strictly"] is False and report["mismatched"] and report["unexpected"]
    assert main(["checkpoint", "inspect", str(tmp_path / "none.pth")]) == 2
