"""Training loop: param groups, schedule, exact resume, checkpoint files, CLI, torchrun (2 CPU ranks)."""

from __future__ import annotations

import json
import math
import os
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
        "epochs": 2, "batch_size": 4, "lr": 1e-3, "warmup_steps": 2, "bf16": False, "seed": 3,
        "model": MICRO,
        "sampling": {"samples_per_epoch": 8, "frame_cache_mb": 4},
    }
    values.update(kw)
    return build(TrainConfig, values)


@pytest.fixture(autouse=True)
def one_thread():
    # tiny ops on a shared 2-core machine: a second OpenMP thread only adds waiting
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    sa = torch.load(tmp_path / "a" / "epoch_0001.state.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "epoch_0001.state.pt", weights_only=True)
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
        "epoch_0000.safetensors", "epoch_0000.state.pt", "epochs.json", "final.safetensors", "train_log.csv"]
    with safe_open(out / "final.safetensors", "pt") as f:
        meta = f.metadata()
    assert meta["mode"] == "bbox" and json.loads(meta["model_config"])["template_free"] is False
    state = torch.load(out / "epoch_0000.state.pt", weights_only=True)
    assert state["epoch"] == 0 and state["step"] == 2 and state["optimizer"]["param_groups"]
    epochs = json.loads((out / "epochs.json").read_text())
    assert len(epochs) == 1 and epochs[0]["end_step"] == 2 and epochs[0]["samples_per_s"] > 0
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
    with pytest.raises(CheckpointError, match="batch_size or samples_per_epoch changed"):
        train(micro_cfg(tmp_path / "r", toy_data, epochs=1, batch_size=2), resume=True, progress=False)
    (tmp_path / "r" / "epoch_0000.state.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="epoch_0000.state.pt"):
        train(cfg, resume=True, progress=False)


def _params_file(tmp_path: Path, data: Path) -> Path:
    cfg = {"train_tf": {"preset": "tiny", "mode": "tf", "datasets": {"synth": str(data)},
                        "out_dir": str(tmp_path / "cli"), "epochs": 1, "batch_size": 4, "bf16": False,
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
    assert float(rows[1].split(",")[-3]) > 0  # samples/s counts the global batch


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
    assert res["frames"] == 6 and res["local"] == 1.0 and "global_tiles" not in res  # no zoom, no tiles
    # visible squares span x <= 24 + 3 + 10 < 40: the frame centre (40, 30) is never inside
    assert res["global"] == 0.0 and res["global_letterbox"] == 0.0
    assert res["chance_area"] == pytest.approx(100 / (80 * 60), rel=1e-6)
    # every toy target is 10x10 px: one size bin, same accuracies as overall
    assert res["frames_by_size"] == {"<12": 6}
    assert res["by_size"]["global"] == {"<12": 0.0} and res["by_size"]["local"] == {"<12": 1.0}
    assert res["by_size"]["global_letterbox"] == {"<12": 0.0}


def test_grounding_accuracy_tiled_view_maps_the_chosen_window_back(toy_data):
    seqs = load_training_sequences({"synth": str(toy_data)})["synth"]
    # 80x60 frames, 64 px views: at zoom 1 two windows (x 0 and 16), at zoom 2 windows of 32 px
    for zoom in (1.0, 2.0):
        res = grounding_accuracy(_ColourNet(), seqs, per_sequence=5, tile_zoom=zoom)
        assert res["frames"] == 10
        assert res["global_tiles"] == res["global"] == res["local"] == 1.0
        assert res["by_size"]["global_tiles"] == {"<12": 1.0}


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
    # per frame: three single views, then the tiled pass (two 64 px windows of an 80x60 frame)
    res = grounding_accuracy(net, seqs, per_sequence=2, template_factor=2.0, tile_zoom=1.0)
    assert res["frames"] == 4 and res["local"] == 1.0 and len(net.seen) == 4 * 4
    first, _ = box_view(seqs[0].read_frame(0), seqs[0].boxes[0], 2.0, net.cfg.encoder.template_size)
    expected = to_network_input(first)
    assert len(net.seen[0]) == net.cfg.num_templates == 2
    assert all(torch.equal(t, expected) for t in net.seen[0])
    assert all(t.shape[0] == 2 and torch.equal(t[1:], expected) for t in net.seen[3])


class _KillingInEpoch2Sampler(TrainingSampler):
    def sample(self, seed, epoch, index):
        if epoch == 2:
            raise _Killed("simulated kill")
        return super().sample(seed, epoch, index)


def test_schedule_fitted_to_the_cap_anneals_and_resumes_exactly(tmp_path, toy_data, monkeypatch):
    import mvlm.train as train_mod

    calls = []

    def fit_to_five(total_steps, step, elapsed_s, window_s, window, max_minutes, env):
        calls.append((total_steps, step, window, max_minutes))
        return 5

    monkeypatch.setattr(train_mod, "FIT_SETTLE", 0)
    monkeypatch.setattr(train_mod, "FIT_WINDOW", 1)
    monkeypatch.setattr(train_mod, "fitted_total_steps", fit_to_five)
    kw = {"epochs": 4, "schedule": "cosine", "max_minutes": 30.0, "fit_schedule_to_cap": True}
    straight = micro_cfg(tmp_path / "a", toy_data, **kw)
    summary = train(straight, progress=False)
    # 2 steps per epoch, 8 planned; timed over step 2 (warmup 2 + window 1), fitted to 5
    assert calls == [(8, 3, 1, 30.0)]
    assert (summary["planned_steps"], summary["schedule_steps"], summary["steps"]) == (8, 5, 5)
    assert not summary["stopped_early"]
    rows = (tmp_path / "a" / "train_log.csv").read_text().strip().splitlines()
    header, last = rows[0].split(","), rows[-1].split(",")
    assert len(rows) == 1 + 5
    # the cosine spans the fitted 5 steps: step 4 is 2 of 3 steps past warmup
    assert float(last[header.index("lr")]) == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 2 / 3)))
    state = torch.load(tmp_path / "a" / "epoch_0001.state.pt", weights_only=True)
    assert state["schedule_steps"] == 5

    # killed in epoch 2 (after the fit): --resume reads the fitted length instead of timing again
    broken = micro_cfg(tmp_path / "b", toy_data, **kw)
    with pytest.raises(_Killed):
        train(broken, sampler=_sampler(_KillingInEpoch2Sampler, broken), progress=False)
    assert latest_epoch(tmp_path / "b") == 1 and len(calls) == 2
    resumed = train(broken, resume=True, progress=False)
    assert len(calls) == 2 and resumed["schedule_steps"] == 5 and resumed["steps"] == 5
    a, b = load_file(tmp_path / "a" / "final.safetensors"), load_file(tmp_path / "b" / "final.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_fitted_total_steps_formula():
    from mvlm.train import FIT_MARGIN, DistEnv, fitted_total_steps

    env = DistEnv(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"))
    # 60 s cap, 70 steps done in 10 s, the last 20 in 4 s: 50 s left at 0.2·margin s/step
    assert FIT_MARGIN == 1.1
    assert fitted_total_steps(1000, 70, 10.0, 4.0, 20, 1.0, env) == 70 + 227
    assert fitted_total_steps(100, 70, 10.0, 4.0, 20, 1.0, env) == 100  # never beyond the plan
    assert fitted_total_steps(1000, 70, 70.0, 4.0, 20, 1.0, env) == 71  # over time already


def test_the_fit_times_its_window_after_the_settling_steps(tmp_path, toy_data, monkeypatch):
    import mvlm.train as train_mod

    calls = []

    def record(total_steps, step, elapsed_s, window_s, window, max_minutes, env):
        calls.append((step, window))
        return total_steps

    monkeypatch.setattr(train_mod, "FIT_SETTLE", 3)
    monkeypatch.setattr(train_mod, "FIT_WINDOW", 2)
    monkeypatch.setattr(train_mod, "fitted_total_steps", record)
    cfg = micro_cfg(tmp_path / "settle", toy_data, epochs=5, schedule="cosine", max_minutes=30.0,
                    fit_schedule_to_cap=True)
    assert train(cfg, progress=False)["steps"] == 10
    # warmup 2 + 3 untimed steps, then steps 5 and 6 timed: the fit happens after step 7
    assert calls == [(7, 2)]


def test_the_schedule_is_refitted_at_the_mean_speed_since_the_window_began(tmp_path, toy_data, monkeypatch):
    import mvlm.train as train_mod

    calls, lengths = [], iter([6, 9, 8])

    def refit(total_steps, step, elapsed_s, window_s, window, max_minutes, env):
        calls.append((step, window))
        return next(lengths)

    monkeypatch.setattr(train_mod, "FIT_SETTLE", 0)
    monkeypatch.setattr(train_mod, "FIT_WINDOW", 1)
    monkeypatch.setattr(train_mod, "REFIT_EVERY", 2)
    monkeypatch.setattr(train_mod, "fitted_total_steps", refit)
    cfg = micro_cfg(tmp_path / "refit", toy_data, epochs=5, schedule="cosine", max_minutes=30.0,
                    fit_schedule_to_cap=True)
    summary = train(cfg, progress=False)
    # fitted after step 3 (window: step 2), refitted after steps 5 and 7 over all steps since 2
    assert calls == [(3, 1), (5, 3), (7, 5)]
    assert (summary["planned_steps"], summary["schedule_steps"], summary["steps"]) == (10, 8, 8)
    rows = (tmp_path / "refit" / "train_log.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    lrs = [float(r.split(",")[header.index("lr")]) for r in rows[1:]]
    cosine = lambda g, total: 1e-3 * 0.5 * (1 + math.cos(math.pi * (g - 2) / (total - 2)))
    # each step uses the length known when it ran: 10 planned, then 6, 9, 8
    assert lrs[2] == pytest.approx(cosine(2, 10)) and lrs[3] == pytest.approx(cosine(3, 6))
    assert lrs[5] == pytest.approx(cosine(5, 9)) and lrs[7] == pytest.approx(cosine(7, 8))
    saved = [torch.load(tmp_path / "refit" / f"epoch_{e:04d}.state.pt", weights_only=True)["schedule_steps"]
             for e in (1, 2, 3)]
    assert saved == [6, 9, 8]  # the length in force when each epoch ended (steps 4, 6, 8)


def test_a_schedule_fitted_to_the_full_plan_is_still_saved(tmp_path, toy_data, monkeypatch):
    import mvlm.train as train_mod

    monkeypatch.setattr(train_mod, "FIT_SETTLE", 0)
    monkeypatch.setattr(train_mod, "FIT_WINDOW", 1)
    monkeypatch.setattr(train_mod, "fitted_total_steps", lambda total_steps, *args: total_steps)
    cfg = micro_cfg(tmp_path / "full", toy_data, epochs=3, schedule="cosine", max_minutes=30.0,
                    fit_schedule_to_cap=True)
    assert train(cfg, progress=False)["steps"] == 6
    before = torch.load(tmp_path / "full" / "epoch_0000.state.pt", weights_only=True)
    after = torch.load(tmp_path / "full" / "epoch_0002.state.pt", weights_only=True)
    assert "schedule_steps" not in before and after["schedule_steps"] == 6  # fitted at step 3
