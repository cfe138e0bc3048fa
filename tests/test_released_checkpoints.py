"""Released-format checkpoints (MVLM_TF.pth.tar / MVLM_BBOX.pth.tar: the reference's key names and
dict layout, foreign pickled classes) through the one loader, and a missing / unstated / wrong
file as one clear error in every entry point (docs/weights.md)."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest
import torch

from mvlm.config import model_config
from mvlm.model import CheckpointError, MVLMNet, load_model
from mvlm.model.checkpoint import read_checkpoint

from released_files import FOREIGN, random_released_state, released_shapes, write_released


@pytest.fixture(scope="session")
def released(tmp_path_factory):
    """Random base-size MVLM_TF / MVLM_BBOX files (same keys, different weights)."""
    d = tmp_path_factory.mktemp("released")
    files = {}
    for seed, (mode, epoch) in enumerate((("tf", 300), ("bbox", 150))):
        state = random_released_state(seed, epoch)
        files[mode] = d / f"MVLM_{mode.upper()}.pth.tar"
        write_released(files[mode], state, epoch)
        files[mode + "_head"] = state["head.conv5_ctr.weight"]
    return files


@pytest.fixture(scope="module")
def tiny_released(tmp_path_factory):
    """A released-layout file of the tiny preset (trainable text tower inside): cheap entry-point checks."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny") / "MVLM_TF.pth.tar"
    write_released(path, MVLMNet(model_config(preset="tiny")).state_dict(), 1)
    return path


def test_key_table_has_the_reference_count():
    assert len(released_shapes()) == 658


def test_base_files_load_with_mode_and_never_import_foreign_code(released):
    obj, info = read_checkpoint(released["tf"])
    assert "lib.train.admin.stats.AverageMeter" in info["opaque_classes"]
    assert "lib.local_config.EnvSettings" in info["opaque_classes"]
    assert obj["settings"].state["env"].state == {"workspace_dir": "/authors/ws"}
    assert not any(name in sys.modules for name in FOREIGN)
    for mode in ("tf", "bbox"):
        with pytest.raises(CheckpointError, match=f"MVLM_{mode.upper()}.pth.tar: the file does not say.*pass the mode"):
            load_model(released[mode], preset="base", random_init=True)
    with pytest.raises(CheckpointError, match="MVLM_TF.pth.tar.*frozen CLIP ViT-L-14 text tower.*--text-weights"):
        load_model(released["tf"], preset="base", mode="tf")
    assert not any(name in sys.modules for name in FOREIGN)


@pytest.mark.slow  # two base-size networks (~90 M parameters + a random ViT-L/14 text tower each)
def test_base_tf_and_bbox_track_through_the_one_loader(released):
    from mvlm.track.tracker import TrackerSpec, build_tracker

    frame = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
    for mode in ("tf", "bbox"):
        built = build_tracker(TrackerSpec(
            checkpoint=str(released[mode]), compat="reference",
            checkpoint_model={"preset": "base", "mode": mode, "random_init": True}))
        net = built.tracker.net
        assert net.cfg.preset == "base" and net.cfg.template_free == (mode == "tf")
        assert torch.equal(net.state_dict()["head.conv5_ctr.weight"], released[mode + "_head"])
        info = built.info
        assert info["random_init"] is True and info["checkpoint_meta"]["random_init"] == "text tower"
        assert info["checkpoint_meta"]["mode"] == mode and info["tracker"]["preset"] == mode
        box = np.array([100.0, 80.0, 40.0, 30.0]) if mode == "bbox" else None
        first = built.tracker.initialize(frame, "the grey box", box=box)  # one base pass each
        assert np.isfinite(first.box).all()
        del built, net


def _frames(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / f"{i + 1}.jpg"), np.full((96, 128, 3), 40 * i, np.uint8))
    return folder


def test_track_and_demo_cli_refuse_missing_and_unstated_files(tmp_path, tiny_released, capsys):
    from mvlm.cli import main

    frames = _frames(tmp_path)
    for command in ("track", "demo"):
        base = [command, "--frames", str(frames), "--text", "the box", "--max-frames", "2"]
        assert main(base + ["--checkpoint", str(tmp_path / "gone.pth.tar")]) == 2
        assert "gone.pth.tar: checkpoint file not found" in capsys.readouterr().err
        assert main(base + ["--checkpoint", str(tiny_released), "--checkpoint-preset", "tiny"]) == 2
        assert "pass the mode" in capsys.readouterr().err
    out = tmp_path / "boxes.txt"
    assert main(["track", "--frames", str(frames), "--text", "the box", "--checkpoint", str(tiny_released),
                 "--checkpoint-preset", "tiny", "--mode", "tf", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2


def test_evaluate_cli_refuses_a_missing_checkpoint(tmp_path, capsys):
    from mvlm.cli import main

    data = tmp_path / "synth"
    assert main(["synth", "--out", str(data), "--sequences", "1", "--frames", "16", "--size", "64x64",
                 "--workers", "1"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--dataset", "lasot", "--root", str(data), "--out", str(tmp_path / "r"),
                 "--checkpoint", str(tmp_path / "MVLM_TF.pth.tar"), "--quiet"]) == 2
    assert "MVLM_TF.pth.tar: checkpoint file not found" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").glob("*.txt"))


def test_serve_load_endpoint_and_checkpoint_list(tmp_path, tiny_released):
    from fastapi.testclient import TestClient

    from mvlm.model import save_checkpoint
    from mvlm.serve.app import ServeConfig, create_app

    root = tmp_path / "data"
    (root / "models").mkdir(parents=True)
    released = root / "models" / "MVLM_TF.pth.tar"
    released.write_bytes(tiny_released.read_bytes())
    torch.manual_seed(0)
    save_checkpoint(MVLMNet(model_config(preset="tiny")), root / "models" / "mine.safetensors", mode="bbox")
    # the server answers loopback Hosts only, and state changes carry the page's client header
    with TestClient(create_app(ServeConfig(data_root=root, work_dir=tmp_path / "work")),
                    base_url="http://127.0.0.1", headers={"X-MVLM-Client": "1"}) as client:
        listed = {c["path"]: c for c in client.get("/api/checkpoints").json()["checkpoints"]}
        assert listed["models/mine.safetensors"]["mode"] == "bbox"
        assert listed["models/MVLM_TF.pth.tar"]["mode"].startswith("unknown: state mode")
        r = client.post("/api/model", json={"checkpoint": "models/gone.pth.tar"})
        assert r.status_code >= 400 and "gone.pth.tar" in r.text
        r = client.post("/api/model", json={"checkpoint": "models/MVLM_TF.pth.tar", "checkpoint_preset": "tiny"})
        assert r.status_code == 400 and "pass the mode" in r.text
        r = client.post("/api/model", json={"checkpoint": "models/mine.safetensors", "mode": "tf"})
        assert r.status_code == 400 and "'bbox' checkpoint" in r.text
        r = client.post("/api/model", json={"checkpoint": "models/MVLM_TF.pth.tar", "checkpoint_preset": "tiny",
                                            "mode": "tf"})
        assert r.status_code == 200 and r.json()["random_init"] is False


def test_widget_loader_and_pipeline_refuse(tmp_path, tiny_released, monkeypatch):
    from mvlm.config import EvaluateConfig
    from mvlm.explore import load_widget_tracker
    from mvlm.pipeline import checkpoint_for

    with pytest.raises(ValueError, match="gone.safetensors: checkpoint file not found"):
        load_widget_tracker(str(tmp_path / "gone.safetensors"))
    with pytest.raises(CheckpointError, match="pass the mode"):
        load_widget_tracker(str(tiny_released), checkpoint_preset="tiny")
    built = load_widget_tracker(str(tiny_released), checkpoint_preset="tiny", checkpoint_mode="tf")
    assert built.tracker.net.cfg.template_free
    cfg = EvaluateConfig(checkpoints={"tf": str(tmp_path / "MVLM_TF.pth.tar")})
    with pytest.raises(CheckpointError, match=r"MVLM_TF.pth.tar: checkpoint file not found \(evaluate.checkpoints.tf"):
        checkpoint_for("tf", cfg)
    monkeypatch.chdir(tmp_path)  # the default path is relative: not the repository's trained models/
    with pytest.raises(CheckpointError, match="tiny_bbox/final.safetensors: checkpoint file not found"):
        checkpoint_for("bbox", EvaluateConfig())
    assert checkpoint_for("tf", EvaluateConfig(checkpoints={"tf": str(tiny_released)})) == str(tiny_released)
