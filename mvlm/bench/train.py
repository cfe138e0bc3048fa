"""`mvlm bench train`: training throughput (samples/s) of a preset, template-free and bbox.

Per mode: `--train-steps` timed steps after `--train-warmup` untimed ones, batch `--train-batch`,
data drawn in-process (`StepBatches`, the loop's own path) from `--train-data` (LaSOT layout,
e.g. data/synth/train) or, without it, a small generated set of moving squares. Reported:
samples/s over data + step, samples/s of the step alone, the data share of the time
(target < 30 %), and whether bf16 autocast was usable on this machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

DATA_SHARE_TARGET = 0.30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-steps", type=int, default=6, help="timed training steps per mode")
    parser.add_argument("--train-warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--train-batch", type=int, default=64, help="batch size")
    parser.add_argument("--train-modes", default="tf,bbox", help="comma-separated: tf, bbox")
    parser.add_argument("--train-data", default=None, help="LaSOT-layout folder (default: generated)")
    parser.add_argument("--train-fp32", action="store_true", help="disable bf16 autocast")


def _generated_sequences(root: Path, n_seq: int = 6, n_frames: int = 40, size=(256, 192)):
    """Coloured squares moving over noise, written as LaSOT layout (decode cost like real data)."""
    import cv2

    rng = np.random.default_rng(0)
    w, h = size
    for s in range(n_seq):
        folder = root / "toy" / f"toy-{s + 1}"
        (folder / "img").mkdir(parents=True)
        colour = rng.integers(0, 256, 3)
        x, y, side = rng.uniform(20, w - 60), rng.uniform(20, h - 60), rng.uniform(12, 40)
        boxes = []
        for f in range(n_frames):
            img = rng.integers(60, 140, (h, w, 3), dtype=np.uint8)
            x = float(np.clip(x + rng.normal(0, 3), 0, w - side))
            y = float(np.clip(y + rng.normal(0, 3), 0, h - side))
            img[int(y):int(y + side), int(x):int(x + side)] = colour
            cv2.imwrite(str(folder / "img" / f"{f + 1:08d}.jpg"), img[:, :, ::-1])
            boxes.append(f"{x:.2f},{y:.2f},{side:.2f},{side:.2f}")
        (folder / "groundtruth.txt").write_text("\n".join(boxes) + "\n")
        (folder / "nlp.txt").write_text(f"the square number {s} on the left\n")
        for flags in ("full_occlusion.txt", "out_of_view.txt"):
            (folder / flags).write_text(",".join("0" * n_frames) + "\n")
    return root


def _bench_mode(mode: str, args: argparse.Namespace, data_root: Path) -> dict:
    import torch

    from mvlm.config import TrainConfig
    from mvlm.data.sampling import StepBatches, TrainingSampler, load_training_sequences
    from mvlm.model.net import build_model
    from mvlm.train import _model_cfg, _TextAndVision, build_optimizer, choose_precision, train_step

    device = torch.device(args.device)
    cfg = TrainConfig(preset=args.preset, mode=mode, batch_size=args.train_batch,
                      precision="fp32" if args.train_fp32 else "auto",
                      datasets={"synth": str(data_root)})
    torch.manual_seed(0)
    net = build_model(_model_cfg(cfg)).to(device)
    optimizer = build_optimizer(net, cfg)
    ncfg = net.cfg
    sampler = TrainingSampler(load_training_sequences(cfg.datasets), cfg.sampling, ncfg.encoder.search_size,
                              ncfg.encoder.template_size, 0 if ncfg.template_free else ncfg.num_templates)
    steps = args.train_warmup + args.train_steps
    batches = StepBatches(sampler, 0, cfg.batch_size, steps, steps)
    model = _TextAndVision(net).train()
    bf16, precision_reason = choose_precision(cfg.precision, device)
    data_s = step_s = 0.0
    for k in range(steps):
        t0 = time.perf_counter()
        batch = batches[k]
        batch.search, batch.templates = batch.search.to(device), [t.to(device) for t in batch.templates]
        batch.boxes, batch.present = batch.boxes.to(device), batch.present.to(device)
        t1 = time.perf_counter()
        train_step(model, optimizer, batch, cfg, device, bf16)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        if k >= args.train_warmup:
            data_s += t1 - t0
            step_s += t2 - t1
    n = args.train_steps * cfg.batch_size
    return {
        "samples_per_s": n / (data_s + step_s),
        "step_samples_per_s": n / step_s,
        "data_ms_per_batch": 1000 * data_s / args.train_steps,
        "step_ms": 1000 * step_s / args.train_steps,
        "data_fraction": data_s / (data_s + step_s),
        "bf16": bf16,
        "precision_reason": precision_reason,
        "search_size": ncfg.encoder.search_size,
        "templates": 0 if ncfg.template_free else ncfg.num_templates,
        "frame_cache_hit_rate": sampler.cache.hits / max(1, sampler.cache.hits + sampler.cache.misses),
    }


def run(args: argparse.Namespace) -> dict:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    modes = [m.strip() for m in args.train_modes.split(",") if m.strip()]
    with tempfile.TemporaryDirectory(prefix="mvlm-bench-train-") as tmp:
        data_root = Path(args.train_data) if args.train_data else _generated_sequences(Path(tmp))
        results = {mode: _bench_mode(mode, args, data_root) for mode in modes}
    return {
        "target": "train",
        "preset": args.preset,
        "batch_size": args.train_batch,
        "timed_steps": args.train_steps,
        "device": args.device,
        "data": args.train_data or "generated (6 x 40 frames, 256x192)",
        "modes": results,
        "data_fraction_target": DATA_SHARE_TARGET,
        "targets_met": all(r["data_fraction"] < DATA_SHARE_TARGET for r in results.values()),
    }
