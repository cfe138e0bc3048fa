"""Training loop: param groups, schedule, exact resume, checkpoint files, CLI, torchrun (2 CPU ranks)."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn
import yaml
from safetensors import safe_open
from safetensors.torch import load_file

from mvlm.config import TrainConfig, build, model_config
from mvlm.data.sampling import TrainingSampler, load_training_sequences
from mvlm.train import (
    read_state,
    grounding_accuracy, latest_epoch, lr_factor, param_groups, size_bin, size_bin_labels, train,
)

REPO = Path(__file__).resolve().parents[1]
# a very small network so a step takes milliseconds: 64 px search, 4x4 map, 1-layer text tower
MICRO = {
    "encoder": {"dims": [16, 32, 64], "depths": [1, 1, 1], "num_heads": 2, "search_size": 64,
                "template_size": 32},
    "text": {"width": 32, "layers": 1, "heads": 1, "context_length": 8},
    "head": {"channels": 16},
}
COLOURS = {"red": (230, 30, 30), "blue": (30, 30, 230)}


def write_lasot(root: Path, n_seq: int = 2, n_frames: int = 6, size=(80, 60)) -> Path:
    """A LaSOT-layout folder: a coloured square moving right on grey; one frame out of view."""
    w, h = size
    for s in range(n_seq):
        colour = list(COLOURS)[s % 2]
        folder = root / "toy" / f"toy-{s + 1}"
        (folder / "img").mkdir(parents=True)
        boxes, oov = [], []
        for f in range(n_frames):
            x, y = 8 + 4 * f + 3 * s, 20
            img = np.full((h, w, 3), 100, np.uint8)
            hidden = f == n_frames - 1
            if not hidden:
                img[y:y + 10, x:x + 10] = COLOURS[colour]
            cv2.imwrite(str(folder / "img" / f"{f + 1:08d}.jpg"), img[:, :, ::-1])
            boxes.append(f"{x},{y},10,10")
            oov.append("1" if hidden else "0")
        (folder / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
        (folder / "nlp.txt").write_text(f"the {colour} square on the left\n")
        (folder / "full_occlusion.txt").write_text(",".join("0" * n_frames) + "\n")
        (folder / "out_of_view.txt").write_text(",".join(oov) + "\n")
    return root


def micro_cfg(out_dir: Path, data: Path, **kw) -> TrainConfig:
    values = {
        "preset": "tiny", "mode": "tf", "datasets": {"synth": str(data)}, "out_dir": str(out_dir),
        "epochs": 2, "batch_size": 4, "lr": 1e-3, "warmup_steps": 2, "precision": "fp32", "seed": 3,
        "model": MICRO,
        "sampling": {"samples_per_epoch": 8, "frame_cache_mb": 4},
    }
    values.update(kw)
    return build(TrainConfig, values)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    return write_lasot(tmp_path_factory.mktemp("lasot"))


def test_param_groups_lr_and_decay():
    from mvlm.model.net import build_model

    cfg = TrainConfig(lr=1e-3, encoder_lr_mult=0.1, text_lr_mult=0.5, weight_decay=0.05)
    net = build_model(model_config({**MICRO, "template_free": True}, preset="tiny"))
    groups = {g["name"]: g for g in param_groups(net, cfg)}
    assert set(groups) == {"head_decay", "head_no_decay", "encoder_decay", "encoder_no_decay",
                           "text_decay", "text_no_decay"}
    assert groups["encoder_decay"]["lr"] == pytest.approx(1e-4) and groups["text_decay"]["lr"] == pytest.approx(5e-4)
    assert groups["head_no_decay"]["weight_decay"] == 0.0 and groups["head_decay"]["weight_decay"] == 0.05
    names = {id(p): n for n, p in net.named_parameters()}
    no_decay = {names[id(p)] for g in groups.values() if g["weight_decay"] == 0 for p in g["params"]}
    assert any("pos_embed" in n for n in no_decay) and any(n.endswith(".bias") for n in no_decay)
    assert all(names[id(p)].startswith("text_encoder.") for p in groups["text_decay"]["params"])
    assert "text_encoder.text_proj.weight" in {names[id(p)] for p in groups["text_decay"]["params"]}
    n_total = sum(len(g["params"]) for g in groups.values())
    assert n_total == sum(1 for p in net.parameters() if p.requires_grad)

    frozen = build_model(model_config({**MICRO, "template_free": True, "text": {**MICRO["text"], "frozen": True}},
                                      preset="tiny"))
    text = [n for g in param_groups(frozen, cfg) if g["name"].startswith("text")
            for n, p in frozen.named_parameters() if any(p is q for q in g["params"])]
    assert text and all(n.startswith("text_encoder.text_proj.") for n in text)


def test_lr_factor_warmup_step_and_cosine():
    cfg = TrainConfig(warmup_steps=4, lr_drop_epoch=2, lr_drop_gamma=0.1)
    assert [lr_factor(s, cfg, 10, 40) for s in (0, 3, 4, 19, 20, 39)] == [0.25, 1.0, 1.0, 1.0, 0.1, 0.1]
    cos = TrainConfig(warmup_steps=4, schedule="cosine")
    assert lr_factor(4, cos, 10, 44) == pytest.approx(1.0)
    assert lr_factor(24, cos, 10, 44) == pytest.approx(0.5)
    assert lr_factor(43, cos, 10, 44) == pytest.approx(0.5 * (1 + np.cos(np.pi * 39 / 40)))


class _Killed(RuntimeError):
    pass


class _KillingSampler(TrainingSampler):
    """Dies while drawing a sample of epoch 1, like a process killed mid-epoch."""

    def sample(self, seed, epoch, index):
        if epoch == 1 and index == 5:
            raise _Killed("simulated kill")
        return super().sample(seed, epoch, index)


def _sampler(cls, cfg: TrainConfig):
    seqs = load_training_sequences(cfg.datasets)
    return cls(seqs, cfg.sampling, 64, 32, 0)


def test_resume_after_kill_gives_the_same_weights(tmp_path, toy_data):
    straight = micro_cfg(tmp_path / "a", toy_data)
    summary = train(straight, progress=False)
    assert summary["steps"] == 4 and summary["epochs_done"] == 2

    broken = micro_cfg(tmp_path / "b", toy_data)
    with pytest.raises(_Killed):
        train(broken, sampler=_sampler(_KillingSampler, broken), progress=False)
    assert latest_epoch(tmp_path / "b") == 0
    resumed = train(broken, resume=True, progress=False)
    assert resumed["resumed_from_epoch"] == 0 and resumed["steps"] == 4

    for name in ("epoch_0001.safetensors", "final.safetensors"):
        a, b = load_file(tmp_path / "a" / name), load_file(tmp_path / "b" / name)
        assert a.keys() == b.keys() and len(a) > 50
        for key in a:
            assert torch.equal(a[key], b[key]), (name, key)
    sa = read_state(tmp_path / "a" / "epoch_0001.state.safetensors")
    sb = read_state(tmp_path / "b" / "epoch_0001.state.safetensors")
    for pid, st in sa["optimizer"]["state"].items():
        assert torch.equal(st["exp_avg"], sb["optimizer"]["state"][pid]["exp_avg"])
    # the log of the resumed run has each step once
    rows = (tmp_path / "b" / "train_log.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2", "3"]


def test_checkpoint_files_and_logs(tmp_path, toy_data):
    cfg = micro_cfg(tmp_path / "run", toy_data, epochs=1, mode="bbox",
                    loss={"align_inference_signal": True})
    summary = train(cfg, progress=False)
    out = tmp_path / "run"
    assert sorted(p.name for p in out.iterdir()) == [
        "epoch_0000.safetensors", "epoch_0000.state.safetensors", "epochs.json", "final.safetensors", "train_log.csv"]
    with safe_open(out / "final.safetensors", "pt") as f:
        meta = f.metadata()
    assert meta["mode"] == "bbox" and json.loads(meta["model_config"])["template_free"] is False
    state = read_state(out / "epoch_0000.state.safetensors")
    assert state["epoch"] == 0 and state["step"] == 2 and state["optimizer"]["param_groups"]
    epochs = json.loads((out / "epochs.json").read_text())
    assert len(epochs) == 1 and epochs[0]["end_step"] == 2 and "samples_per_s" not in epochs[0]
    assert np.isfinite(epochs[0]["loss"]) and epochs[0]["cm_inference"] >= 0
    header = (out / "train_log.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["step", "epoch", "loss", "focal", "giou"]
    assert summary["final"].endswith("final.safetensors")


def test_max_minutes_stops_cleanly(tmp_path, toy_data):
    cfg = micro_cfg(tmp_path / "cap", toy_data, max_minutes=1e-9)
    summary = train(cfg, progress=False)
    assert summary["stopped_early"] and summary["steps"] == 1
    assert (tmp_path / "cap" / "final.safetensors").is_file()
    assert json.loads((tmp_path / "cap" / "epochs.json").read_text())[-1]["partial"] is True


def test_resume_of_a_broken_state_file_names_it(tmp_path, toy_data):
    from mvlm.model.checkpoint import CheckpointError

    cfg = micro_cfg(tmp_path / "r", toy_data, epochs=1)
    train(cfg, progress=False)
    with pytest.raises(CheckpointError, match="batch_size: 4 -> 2"):
        train(micro_cfg(tmp_path / "r", toy_data, epochs=1, batch_size=2), resume=True, progress=False)
    (tmp_path / "r" / "epoch_0000.state.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="epoch_0000.state.safetensors"):
        train(cfg, resume=True, progress=False)


def _params_file(tmp_path: Path, data: Path) -> Path:
    cfg = {"train_tf": {"preset": "tiny", "mode": "tf", "datasets": {"synth": str(data)},
                        "out_dir": str(tmp_path / "cli"), "epochs": 1, "batch_size": 4, "precision": "fp32",
                        "warmup_steps": 1, "model": MICRO, "sampling": {"samples_per_epoch": 8}}}
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_cli_train_and_clear_errors(tmp_path, toy_data, capsys):
    from mvlm.cli import main

    params = _params_file(tmp_path, toy_data)
    assert main(["train", "--params", str(params), "--set", "seed=1", "--no-progress"]) == 0
    assert (tmp_path / "cli" / "final.safetensors").is_file()
    assert main(["train", "--params", str(params), "--set", "epochz=1"]) == 2
    assert "unknown key train_tf.epochz" in capsys.readouterr().err
    assert main(["train", "--params", str(params), "--section", "train_bbox"]) == 2
    assert "no section 'train_bbox'" in capsys.readouterr().err
    assert main(["train", "--params", str(params), "--set", f"datasets={{synth: {tmp_path}/nowhere}}"]) == 2
    assert "nowhere: dataset root not found" in capsys.readouterr().err


@pytest.mark.slow
def test_torchrun_two_cpu_processes(tmp_path, toy_data):
    params = _params_file(tmp_path, toy_data)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "mvlm", "train", "--params", str(params), "--no-progress",
           "--set", "sampling.samples_per_epoch=16", "--set", "batch_size=8", "--set", "device=cpu"]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout[done.stdout.index("{"):])
    assert summary["world_size"] == 2 and summary["steps"] == 2
    rows = (tmp_path / "cli" / "train_log.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[1].split(",")[0] == "0"
    timing = (tmp_path / "cli.timings.csv").read_text().strip().splitlines()
    assert timing[0] == "step,samples_per_s,data_s,step_s" and float(timing[1].split(",")[1]) > 0


class _CentreNet(nn.Module):
    """Predicts the view centre: right on the GT for local views, which are centred on it."""

    def __init__(self):
        super().__init__()
        self.cfg = model_config({**MICRO, "template_free": True}, preset="tiny")
        self.w = nn.Parameter(torch.zeros(1))

    def encode_text(self, texts):
        return torch.zeros(len(texts), 2, 4)

    def forward(self, search, templates, text_emb):
        return {"pred_boxes": torch.tensor([[[0.5, 0.5, 0.1, 0.1]]]).expand(len(search), 1, 4),
                "score_map": torch.zeros(len(search), 1, 4, 4)}


class _ColourNet(_CentreNet):
    """Finds the one saturated (non-grey) blob of a view: centroid as the box centre, pixel count
    as the score peak, so a tiled pass must pick the window that holds the square."""

    def forward(self, search, templates, text_emb):
        from mvlm.data.crops import IMAGENET_MEAN, IMAGENET_STD

        rgb = search[:, :3] * torch.tensor(IMAGENET_STD)[:, None, None] + torch.tensor(IMAGENET_MEAN)[:, None, None]
        blob = (rgb.amax(1) - rgb.amin(1)) > 0.3  # (B,H,W): grey frame and black padding have no spread
        size = search.shape[-1]
        ys, xs = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
        count = blob.flatten(1).sum(1).float()
        cx = (blob * xs).flatten(1).sum(1) / count.clamp(min=1) / size
        cy = (blob * ys).flatten(1).sum(1) / count.clamp(min=1) / size
        boxes = torch.stack([cx, cy, torch.full_like(cx, 0.1), torch.full_like(cx, 0.1)], 1)[:, None]
        return {"pred_boxes": boxes, "score_map": count.reshape(-1, 1, 1, 1).expand(-1, 1, 4, 4)}


def test_grounding_accuracy_on_a_centre_predictor(toy_data):
    seqs = load_training_sequences({"synth": str(toy_data)})["synth"]
    res = grounding_accuracy(_CentreNet(), seqs, per_sequence=3)
    assert res["frames"] == 6 and res["local"] == 1.0 and "global_tiles" not in res
    # visible squares span x <= 24 + 3 + 10 < 40: the frame centre (40, 30) is never inside
    assert res["global"] == 0.0 and res["global_letterbox"] == 0.0
    assert res["chance_area"] == pytest.approx(100 / (80 * 60), rel=1e-6)
    # every toy target is 10x10 px: one size bin, same accuracies as overall
    assert res["frames_by_size"] == {"<12": 6}
    assert res["by_size"]["global"] == {"<12": 0.0} and res["by_size"]["local"] == {"<12": 1.0}
    assert res["by_size"]["global_letterbox"] == {"<12": 0.0}


def test_size_bins_put_an_edge_in_the_bin_above():
    assert size_bin_labels() == ["<12", "12-24", "24-48", ">=48"]
    assert [size_bin(v) for v in (0.0, 11.9, 12.0, 23.99, 24.0, 48.0, 500.0)] == [
        "<12", "<12", "12-24", "12-24", "24-48", ">=48", ">=48"]
    assert size_bin(5.0, (4.0,)) == ">=4" and size_bin(3.0, (4.0,)) == "<4"


class _TemplateRecorder(_CentreNet):
    """A box-mode centre predictor that keeps the templates it is given."""

    def __init__(self):
        super().__init__()
        self.cfg = model_config({**MICRO, "template_free": False}, preset="tiny")
        self.seen = []

    def forward(self, search, templates, text_emb):
        self.seen.append(templates)
        return super().forward(search, templates, text_emb)


def test_grounding_accuracy_gives_a_box_model_first_frame_templates(toy_data):
    from mvlm.data.crops import box_view, to_network_input

    seqs = load_training_sequences({"synth": str(toy_data)})["synth"]
    net = _TemplateRecorder()
    # per frame: three single views
    res = grounding_accuracy(net, seqs, per_sequence=2, template_factor=2.0)
    assert res["frames"] == 4 and res["local"] == 1.0 and len(net.seen) == 4 * 3
    first, _ = box_view(seqs[0].read_frame(0), seqs[0].boxes[0], 2.0, net.cfg.encoder.template_size)
    expected = to_network_input(first)
    assert len(net.seen[0]) == net.cfg.num_templates == 2
    assert all(torch.equal(t, expected) for t in net.seen[0])


class _KillingInEpoch2Sampler(TrainingSampler):
    def sample(self, seed, epoch, index):
        if epoch == 2:
            raise _Killed("simulated kill")
        return super().sample(seed, epoch, index)


def test_precision_choice_reads_flags_not_the_clock(monkeypatch):
    import mvlm.train as tr

    cpu = torch.device("cpu")
    assert tr.choose_precision("fp32", cpu) == (False, "precision: fp32")
    assert tr.choose_precision("bf16", cpu)[0] is True
    monkeypatch.setattr(tr, "cpu_flags", lambda: {"avx512f", "avx512bw"})  # AVX-512 alone emulates bf16
    bf16, reason = tr.choose_precision("auto", cpu)
    assert not bf16 and "no native bf16" in reason
    monkeypatch.setattr(tr, "cpu_flags", lambda: {"avx512f", "amx_bf16"})
    bf16, reason = tr.choose_precision("auto", cpu)
    assert bf16 and "amx_bf16" in reason
    with pytest.raises(ValueError, match="precision"):
        tr.choose_precision("fp16", cpu)


def test_precision_and_reason_are_saved_with_the_checkpoint(tmp_path, toy_data):
    from safetensors import safe_open

    summary = train(micro_cfg(tmp_path / "p", toy_data, epochs=1), progress=False)
    assert summary["precision"] == "fp32" and summary["precision_reason"] == "precision: fp32"
    with safe_open(str(tmp_path / "p" / "final.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["precision"] == "fp32" and meta["precision_reason"] == "precision: fp32"
    with safe_open(str(tmp_path / "p" / "epoch_0000.safetensors"), "pt") as f:
        assert f.metadata()["precision"] == "fp32"


def test_same_config_gives_identical_weights_and_logs(tmp_path, toy_data):
    """Steps, not the clock, define a run: two runs leave byte-identical output folders
    (timings go to a file of their own, beside the folder)."""
    import hashlib

    for name in ("a", "b"):  # the same out_dir each time (the saved config names it)
        train(micro_cfg(tmp_path / "run", toy_data, epochs=2), progress=False)
        (tmp_path / "run").rename(tmp_path / name)
        (tmp_path / "run.timings.csv").rename(tmp_path / f"{name}.timings.csv")
    files = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "b").iterdir())
    assert "final.safetensors" in files and "train_log.csv" in files
    for name in files:
        a, b = ((tmp_path / d / name).read_bytes() for d in ("a", "b"))
        assert hashlib.sha256(a).digest() == hashlib.sha256(b).digest(), name
    assert (tmp_path / "a.timings.csv").is_file()


def test_resume_with_another_config_is_refused_naming_the_keys(tmp_path, toy_data):
    from mvlm.model.checkpoint import CheckpointError

    train(micro_cfg(tmp_path / "r", toy_data, epochs=1), progress=False)
    for key, value, shown in (("lr", 5e-4, "lr: 0.001 -> 0.0005"), ("seed", 4, "seed: 3 -> 4"),
                              ("loss", {"cm": 0.1}, "loss.cm: 0.5 -> 0.1")):
        with pytest.raises(CheckpointError, match="config changed") as err:
            train(micro_cfg(tmp_path / "r", toy_data, epochs=1, **{key: value}), resume=True, progress=False)
        assert shown in str(err.value)
    # where it runs may change: threads, processes, the cap
    train(micro_cfg(tmp_path / "r", toy_data, epochs=1, threads=1, max_minutes=60.0), resume=True, progress=False)


def test_config_changes_lists_nested_keys():
    from mvlm.train import config_changes

    saved = {"lr": 1.0, "loss": {"cm_weight": 0.5, "l1_weight": 5.0}, "threads": 1, "betas": [0.9, 0.99]}
    now = {"lr": 1.0, "loss": {"cm_weight": 0.2, "l1_weight": 5.0}, "threads": 2, "betas": (0.9, 0.99)}
    assert config_changes(saved, now) == ["loss.cm_weight: 0.5 -> 0.2"]


@pytest.mark.slow
def test_two_process_training_is_deterministic(tmp_path, toy_data):
    """Two 2-process DDP (gloo) runs of one config give byte-identical weights."""
    import hashlib

    params = _params_file(tmp_path, toy_data)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    digests = []
    for _ in range(2):
        shutil.rmtree(tmp_path / "cli", ignore_errors=True)
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "mvlm", "train", "--params", str(params), "--no-progress",
               "--set", "sampling.samples_per_epoch=16", "--set", "batch_size=8", "--set", "epochs=2",
               "--set", "device=cpu"]
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr[-3000:]
        digests.append({p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in sorted((tmp_path / "cli").iterdir())})
    assert len(digests[0]) == 7 and digests[0] == digests[1]  # 2 epochs x (net, state), final, 2 logs


@pytest.mark.slow
def test_killing_the_launcher_ends_torchrun_and_its_ranks(tmp_path, toy_data):
    """`mvlm train` with processes: 2 starts torchrun; SIGKILL of the launcher ends them all."""
    import signal
    import time

    params = _params_file(tmp_path, toy_data)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    launcher = subprocess.Popen(
        [sys.executable, "-m", "mvlm", "train", "--params", str(params), "--no-progress",
         "--set", "processes=2", "--set", "epochs=500", "--set", "sampling.samples_per_epoch=16",
         "--set", "batch_size=8", "--set", "device=cpu"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def descendants() -> set[int]:
        found, frontier = set(), {launcher.pid}
        while frontier:
            children = set()
            for pid in frontier:
                try:
                    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
                except OSError:
                    continue
                children |= {int(c) for c in text.split()}
            found |= children
            frontier = children
        return found

    deadline = time.monotonic() + 120
    while len(descendants()) < 3 and time.monotonic() < deadline:  # torchrun + 2 ranks
        time.sleep(0.5)
    procs = descendants()
    assert len(procs) >= 3, "torchrun and its ranks did not start"
    while not (tmp_path / "cli" / "train_log.csv").is_file() and time.monotonic() < deadline:
        time.sleep(0.5)
    os.kill(launcher.pid, signal.SIGKILL)
    launcher.wait()
    deadline = time.monotonic() + 30
    alive = procs
    while alive and time.monotonic() < deadline:
        time.sleep(0.5)
        alive = {p for p in procs if Path(f"/proc/{p}").exists()
                 and "Z" not in Path(f"/proc/{p}/stat").read_text().split(")")[-1][:3]}
    if alive:
        for pid in alive:
            os.kill(pid, signal.SIGKILL)
    assert not alive, f"left running after the launcher died: {sorted(alive)}"
