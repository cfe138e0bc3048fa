"""The paper's recipe (paper/params.yaml): reference optimizer groups name by name on the
full-size key list, split-safe training datasets, batch semantics across process counts, one
`base` step on real frames from random weights in the pretrained file layouts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from mvlm.config import TrainConfig, build, load_params, model_config, section
from mvlm.data.sampling import SplitLeakError, load_training_sequences
from mvlm.train import optimizer_groups, saved_config

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "paper" / "params.yaml"
KEYS = REPO / "tests" / "fixtures" / "reference-parity" / "base_state_dict_keys.json"
REAL_LASOT = REPO.parent / "shared" / "data" / "real" / "lasot"
MICRO = {
    "encoder": {"dims": [16, 32, 64], "depths": [1, 1, 1], "num_heads": 2, "search_size": 64, "template_size": 32},
    "text": {"width": 32, "layers": 1, "heads": 1, "context_length": 8},
    "head": {"channels": 16},
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def recipe(name: str = "train_tf") -> TrainConfig:
    return section(load_params(RECIPE), name, TrainConfig)


def _names(net, params) -> list[str]:
    by_id = {id(p): n for n, p in net.named_parameters()}
    return [by_id[id(p)] for p in params]


@pytest.fixture(scope="module")
def base_net():
    from mvlm.model.net import build_model

    with torch.device("meta"):  # shapes and names only: no memory, no init cost
        return build_model(model_config({"template_free": True}, preset="base"))


def test_recipes_load_and_differ_only_where_documented():
    tf, bbox = recipe("train_tf"), recipe("train_bbox")
    assert (tf.compat, tf.batch_per, tf.batch_size, tf.lr, tf.weight_decay, tf.grad_clip) == \
        ("reference", "process", 80, 5e-4, 1e-4, 0.1)
    assert (tf.epochs, tf.lr_drop_epoch, tf.encoder_lr_mult, tf.sampling.samples_per_epoch, tf.sampling.max_gap) == \
        (60, 54, 0.1, 100000, 400)
    assert tf.sampling.local_share == 1.0 and tf.sampling.global_share == 0.0
    assert tf.model["patchembed_init"] == "halfcopy" and tf.splits == {"lasot": "train", "vasttrack": "train",
                                                                        "tnl2k": "train"}
    assert (bbox.mode, bbox.batch_size, bbox.lr) == ("bbox", 48, 3e-4)
    assert recipe("train_tf_corrected").compat == "corrected"


def test_reference_groups_match_the_reference_name_by_name(base_net):
    ref = json.loads(KEYS.read_text())["optimizer_text_frozen_param_groups"]
    cfg = recipe("train_tf")
    groups = optimizer_groups(base_net, cfg)
    assert [g["name"] for g in groups] == ["head", "encoder"]
    assert _names(base_net, groups[0]["params"]) == ref["group0"]
    assert _names(base_net, groups[1]["params"]) == ref["group1"]  # text_proj at the encoder lr
    assert "text_encoder.text_proj.weight" in ref["group1"]
    assert groups[0]["lr"] == pytest.approx(5e-4) and groups[1]["lr"] == pytest.approx(5e-5)
    assert all(g["weight_decay"] == 1e-4 for g in groups)  # decay on every parameter
    # the text tower is frozen by name; nothing else is left out
    assert not any(p.requires_grad for n, p in base_net.named_parameters() if "clip" in n)
    assert sum(len(g["params"]) for g in groups) == len(ref["group0"]) + len(ref["group1"]) == 622


def test_corrected_groups_fix_text_proj_and_decay(base_net):
    cfg = recipe("train_tf_corrected")
    groups = {g["name"]: g for g in optimizer_groups(base_net, cfg)}
    text = _names(base_net, groups["text_decay"]["params"]) + _names(base_net, groups["text_no_decay"]["params"])
    assert sorted(text) == ["text_encoder.text_proj.bias", "text_encoder.text_proj.weight"]
    assert groups["text_decay"]["lr"] == pytest.approx(5e-4)  # the head's lr, not the encoder's
    no_decay = {n for g in groups.values() if g["weight_decay"] == 0 for n in _names(base_net, g["params"])}
    assert {"encoder.body.pos_embed", "encoder.body.cls_token", "encoder.body.blocks.8.gamma_1",
            "encoder.body.fc_norm.weight", "head.conv1_ctr.0.bias"} <= no_decay
    assert "encoder.body.blocks.8.attn.q_proj.weight" not in no_decay


def test_new_keys_at_their_defaults_are_not_saved():
    saved = saved_config(TrainConfig())
    assert "compat" not in saved and "batch_per" not in saved and "grayscale" not in saved["sampling"]
    assert saved_config(recipe())["compat"] == "reference"


# ---- splits


def _lasot_seq(root: Path, name: str, n: int = 4) -> None:
    folder = root / name.rsplit("-", 1)[0] / name
    (folder / "img").mkdir(parents=True)
    for f in range(n):
        cv2.imwrite(str(folder / "img" / f"{f + 1:08d}.jpg"), np.full((40, 40, 3), 90, np.uint8))
    (folder / "groundtruth.txt").write_text("\n".join("5,5,10,10" for _ in range(n)) + "\n")
    (folder / "nlp.txt").write_text("a grey square\n")
    for flags in ("full_occlusion.txt", "out_of_view.txt"):
        (folder / flags).write_text(",".join("0" * n) + "\n")


def _tnl2k_seq(folder: Path, n: int = 4) -> None:
    (folder / "imgs").mkdir(parents=True)
    for f in range(n):
        cv2.imwrite(str(folder / "imgs" / f"{f:05d}.jpg"), np.full((40, 40, 3), 90, np.uint8))
    (folder / "groundtruth.txt").write_text("\n".join("5,5,10,10" for _ in range(n)) + "\n")
    (folder / "language.txt").write_text("a grey square")


def test_lasot_test_sequences_are_refused_and_the_train_split_leaves_them_out(tmp_path):
    root = tmp_path / "LaSOT"
    for name in ("airplane-1", "airplane-2", "bear-3"):  # airplane-1 is one of the 280 test names
        _lasot_seq(root, name)
    with pytest.raises(SplitLeakError, match="airplane-1"):
        load_training_sequences({"lasot": str(root)}, guard=True)
    with pytest.raises(SplitLeakError, match="test split"):
        load_training_sequences({"lasot": str(root)}, splits={"lasot": "test"}, guard=True)
    listed = tmp_path / "my_split.txt"
    listed.write_text("airplane-2\nairplane-1\n")
    with pytest.raises(SplitLeakError, match="1 LaSOT test sequence"):
        load_training_sequences({"lasot": str(root)}, splits={"lasot": str(listed)}, guard=True)
    got = load_training_sequences({"lasot": str(root)}, splits={"lasot": "train"}, guard=True)
    assert sorted(s.name for s in got["lasot"]) == ["airplane-2", "bear-3"]
    listed.write_text("bear-3\n")
    got = load_training_sequences({"lasot": str(root)}, splits={"lasot": str(listed)}, guard=True)
    assert [s.name for s in got["lasot"]] == ["bear-3"]
    with pytest.raises(Exception, match="not a training dataset"):
        load_training_sequences({"lasot": str(root)}, splits={"tnl2k": "train"}, guard=True)


def test_tnl2k_test_folder_is_refused_unless_the_train_split_is_named(tmp_path):
    root = tmp_path / "TNL2K"
    _tnl2k_seq(root / "train" / "seq_a")
    _tnl2k_seq(root / "test" / "Fight_video_6-Done")
    with pytest.raises(SplitLeakError, match="test/ folder"):
        load_training_sequences({"tnl2k": str(root)}, guard=True)
    with pytest.raises(SplitLeakError, match="test split"):
        load_training_sequences({"tnl2k": str(root)}, splits={"tnl2k": "test"}, guard=True)
    got = load_training_sequences({"tnl2k": str(root)}, splits={"tnl2k": "train"}, guard=True)
    assert [s.name for s in got["tnl2k"]] == ["seq_a"]
    assert len(load_training_sequences({"tnl2k": str(root)})["tnl2k"]) == 2  # unguarded loading: as before


def test_training_refuses_a_leaking_config(tmp_path):
    from mvlm.train import train

    root = tmp_path / "LaSOT"
    _lasot_seq(root, "airplane-1")
    cfg = build(TrainConfig, {"datasets": {"lasot": str(root)}, "out_dir": str(tmp_path / "out"), "model": MICRO,
                              "precision": "fp32", "batch_size": 2, "sampling": {"samples_per_epoch": 2}})
    with pytest.raises(SplitLeakError, match="leaks the test split"):
        train(cfg, progress=False)


# ---- processes


def _toy(root: Path) -> Path:
    for k, name in enumerate(("toy-1", "toy-2")):
        folder = root / "toy" / name
        (folder / "img").mkdir(parents=True)
        boxes = []
        for f in range(6):
            img = np.full((60, 80, 3), 100, np.uint8)
            x = 8 + 4 * f + 3 * k
            img[20:30, x:x + 10] = (230, 30, 30) if k == 0 else (30, 30, 230)
            cv2.imwrite(str(folder / "img" / f"{f + 1:08d}.jpg"), img[:, :, ::-1])
            boxes.append(f"{x},20,10,10")
        (folder / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
        (folder / "nlp.txt").write_text(f"the {'red' if k == 0 else 'blue'} square on the left\n")
        for flags in ("full_occlusion.txt", "out_of_view.txt"):
            (folder / flags).write_text(",".join("0" * 6) + "\n")
    return root


def _tiny_overrides(data: Path, out: Path) -> list[str]:
    """The paper recipe at a micro size on toy data (still reference mode, the paper's optimizer)."""
    return [f"preset=tiny", f"model={json.dumps(MICRO)}", f"datasets={{synth: {data}}}", "splits={}",
            "sampling.dataset_ratios={}", "sampling.samples_per_epoch=24", "sampling.frame_cache_mb=4",
            "epochs=1", "num_workers=0", "device=cpu", "threads=1", f"out_dir={out}", "lr_drop_epoch=0"]


def _two_ranks(summary: Path, overrides: list[str]) -> subprocess.CompletedProcess:
    """`mvlm train` of the paper's train_tf section under torchrun, 2 gloo ranks on CPU."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "mvlm", "train", "--params", str(RECIPE), "--section", "train_tf", "--no-progress",
           "--summary", str(summary)]
    for text in overrides:
        cmd += ["--set", text]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _params(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    from mvlm.model.net import build_model

    state = load_file(str(out / "final.safetensors"))
    net = build_model(model_config({**MICRO, "template_free": True}, preset="tiny"))
    trainable = {n for n, _ in net.named_parameters()}
    return {k: v for k, v in state.items() if k in trainable}


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_same_global_batch(tmp_path):
    """2 ranks x 4 per process (batch_per: process) == 1 process, global batch 8 in chunks of 4
    (BatchNorm sees 4-sample batches in both), to 1e-5 after 3 steps."""
    from mvlm.config import apply_overrides
    from mvlm.train import train

    data = _toy(tmp_path / "toy")
    two = tmp_path / "two"
    done = _two_ranks(tmp_path / "two.json", _tiny_overrides(data, two) + ["batch_size=4", "batch_per=process"])
    summary = json.loads((tmp_path / "two.json").read_text())
    assert summary["world_size"] == 2 and summary["global_batch"] == 8 and summary["steps"] == 3
    assert "global batch 8 (4 per process)" in done.stderr

    one = tmp_path / "one"
    params = apply_overrides(load_params(RECIPE), [f"train_tf.{t}" for t in
                                                   _tiny_overrides(data, one) + ["batch_size=8", "batch_per=global",
                                                                                 "micro_batch=4"]])
    result = train(section(params, "train_tf", TrainConfig), progress=False)
    assert result["steps"] == 3
    a, b = _params(two), _params(one)
    assert a.keys() == b.keys() and a
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-5, msg=name)


@pytest.mark.slow
@pytest.mark.parametrize("batch_per", ["global", "process"])
def test_a_run_killed_on_two_ranks_resumes_on_one_with_the_documented_effect(tmp_path, batch_per):
    """docs/training.md "Resuming, also on another number of GPUs": 2 ranks train 2 epochs, a kill
    during epoch 1 leaves epoch 0's checkpoint (and log rows of epoch 1), one process resumes.
    batch_per global (8): the same batches and steps, the uninterrupted run's weights to 1e-5;
    batch_per process (4): the global batch drops from 8 to 4, so epoch 1 takes twice the steps,
    numbered from where the new count puts epoch 1."""
    import shutil

    from mvlm.config import apply_overrides
    from mvlm.train import latest_epoch, train

    data = _toy(tmp_path / "toy")
    out = tmp_path / "run"
    overrides = _tiny_overrides(data, out) + ["epochs=2", f"batch_per={batch_per}", "micro_batch=4",
                                              f"batch_size={8 if batch_per == 'global' else 4}"]
    _two_ranks(tmp_path / "two.json", overrides)
    assert json.loads((tmp_path / "two.json").read_text())["steps"] == 6
    shutil.copytree(out, tmp_path / "uninterrupted")
    for name in ("epoch_0001.safetensors", "epoch_0001.state.safetensors", "final.safetensors"):
        (out / name).unlink()  # what a kill during epoch 1 leaves
    assert latest_epoch(out) == 0

    params = apply_overrides(load_params(RECIPE), [f"train_tf.{t}" for t in overrides])
    summary = train(section(params, "train_tf", TrainConfig), resume=True, progress=False)
    logged = [int(r.split(",")[0]) for r in (out / "train_log.csv").read_text().splitlines()[1:]]
    if batch_per == "global":
        assert (summary["world_size"], summary["resumed_from_epoch"], summary["steps"]) == (1, 0, 6)
        assert logged == list(range(6))
    else:  # epoch 1 in 24 // 4 = 6 steps, numbered as the new world counts them (from 1 x 6)
        assert (summary["world_size"], summary["resumed_from_epoch"], summary["steps"]) == (1, 0, 12)
        assert logged == [0, 1, 2] + list(range(6, 12))
    if batch_per == "global":
        a, b = _params(tmp_path / "uninterrupted"), _params(out)
        for name in a:
            torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-5, msg=name)


def test_disabled_stage_writes_its_outputs_and_trains_nothing(tmp_path):
    from mvlm.recipes import paper_train_stage

    out = paper_train_stage(RECIPE, "train_tf", enabled=False, summary=tmp_path / "s.json",
                            overrides=(f"out_dir={tmp_path / 'm'}",))
    assert out == {"enabled": False, "section": "train_tf", "out_dir": str(tmp_path / "m")}
    assert (tmp_path / "m" / "DISABLED.txt").is_file() and not list((tmp_path / "m").glob("*.safetensors"))


# ---- one base step on real frames


@pytest.mark.slow
@pytest.mark.real_data
@pytest.mark.skipif(not (REAL_LASOT / "airplane" / "airplane-1").is_dir(),
                    reason="../shared/data/real (LaSOT airplane-1) is not here")
def test_one_base_step_on_real_frames_from_pretrained_layout_files(tmp_path):
    """Random weights written as a 3-channel Fast-iTPN file (no `encoder.body.` prefix, 14x14 pos
    grid) and an open_clip ViT-L/14 text file; the recipe loads them (halfcopy) and takes one
    step on LaSOT airplane-1 (a test sequence: the sampler is given directly, as a smoke test)."""
    from safetensors.torch import save_file

    from mvlm.config import SamplingConfig
    from mvlm.data.benchmarks import load_dataset
    from mvlm.data.sampling import TrainingSampler
    from mvlm.model.net import build_model
    from mvlm.train import train

    torch.manual_seed(0)
    net = build_model(model_config({"template_free": True}, preset="base"))
    body = {k: v.clone() for k, v in net.encoder.body.state_dict().items()}
    body["patch_embed.proj.weight"] = torch.randn(128, 3, 4, 4) * 0.02
    body["pos_embed"] = torch.randn(1, 196, 512) * 0.02
    save_file(body, str(tmp_path / "fast_itpn_base.safetensors"))
    save_file({k: v.contiguous() for k, v in net.text_encoder.clip.state_dict().items()},
              str(tmp_path / "clip_l14_text.safetensors"))
    del net, body

    cfg = recipe("train_tf")
    cfg.model = {"pretrained_backbone": str(tmp_path / "fast_itpn_base.safetensors"), "patchembed_init": "halfcopy",
                 "text": {"weights": str(tmp_path / "clip_l14_text.safetensors")}}
    cfg.datasets, cfg.splits = {"lasot": str(REAL_LASOT)}, {}
    cfg.batch_size, cfg.num_workers, cfg.device, cfg.out_dir = 2, 0, "cpu", str(tmp_path / "out")
    cfg.sampling.samples_per_epoch, cfg.sampling.dataset_ratios, cfg.epochs = 2, {}, 1
    seqs = {"lasot": load_dataset("lasot", REAL_LASOT / "airplane" / "airplane-1")}
    sampler = TrainingSampler(seqs, SamplingConfig(**{**cfg.sampling.__dict__, "flip_swaps_words": False}),
                              224, 112, 0)
    summary = train(cfg, sampler=sampler, progress=False)
    assert summary["steps"] == 1
    from safetensors.torch import load_file

    state = load_file(str(tmp_path / "out" / "final.safetensors"))
    assert state["encoder.body.patch_embed.proj.weight"].shape == (128, 6, 4, 4)
    assert state["encoder.body.pos_embed"].shape == (1, 245, 512)
    log = (tmp_path / "out" / "train_log.csv").read_text().splitlines()
    assert len(log) == 2 and np.isfinite(float(log[1].split(",")[2]))
