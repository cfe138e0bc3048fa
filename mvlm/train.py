"""Training loop: one process, or many under torchrun (DDP) with the same semantics.

- Step g draws its global batch of `batch_size` samples from the per-epoch sample list
  (`sampling.StepBatches`); with W processes each rank takes batch_size/W of them, DDP averages
  the gradients. Sample i of epoch e depends only on (seed, e, i).
- The torch RNG (dropout, drop-path) is reseeded at every epoch from (seed, epoch, rank), so a run
  resumed from an epoch checkpoint continues to exactly the weights of an uninterrupted run.
- Optimizer: AdamW with param groups head (lr), encoder (lr·encoder_lr_mult), text (text_proj and
  a trainable tower, lr·text_lr_mult); no weight decay on norms, biases, gammas, pos_embed,
  cls_token (the reference decays everything and trains text_proj at the encoder lr, §7.3-10).
- LR factor at global step g:  warmup  f = (g+1)/warmup_steps  for g < warmup_steps, then
  step:   f = 1 before epoch lr_drop_epoch, lr_drop_gamma from it on (0 = never drops);
  cosine: f = ½(1 + cos(π·(g − warmup)/(total − warmup))), total = epochs·steps_per_epoch,
  or, with `fit_schedule_to_cap`, the steps that fit `max_minutes` at the speed measured over
  FIT_WINDOW steps once warmup and FIT_SETTLE more steps are done, refitted every REFIT_EVERY
  steps after that at the mean speed since the window began (rank 0 decides; the latest length
  is saved in the epoch state, and --resume continues it without refitting).
- Each epoch (rank 0): `epoch_XXXX.safetensors` (net, `checkpoint.save_checkpoint`, frozen text
  tower left out) + `epoch_XXXX.state.pt` (tensors and plain values only: optimizer state, step,
  epoch, RNG; read back with `torch.load(weights_only=True)`), both written tmp + os.replace.
  At the end (or at the `max_minutes` cap) `final.safetensors`. Logs: `train_log.csv` (one row per
  step) and `epochs.json` (one entry per epoch).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.distributed as dist
from torch import nn

from mvlm.config import TrainConfig, model_config, to_dict
from mvlm.data.sampling import StepBatches, TrainingBatch, TrainingSampler, load_training_sequences
from mvlm.model.losses import mvlm_loss

NO_DECAY_NAMES = ("pos_embed", "cls_token", "gamma", "positional_embedding", "norm")
LOG_FIELDS = ["step", "epoch", "loss", "focal", "giou", "l1", "cm", "cm_inference", "iou", "lr",
              "samples_per_s", "data_s", "step_s"]
_EPOCH_FILE = re.compile(r"epoch_(\d+)\.safetensors$")


# --------------------------------------------------------------------------------------------
# processes


@dataclass
class DistEnv:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistEnv:
    """Process group from torchrun's env (WORLD_SIZE/RANK/LOCAL_RANK): nccl on GPU, gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = torch.device(f"cuda:{local}") if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistEnv(rank, world, local, dev)


def under_launcher() -> bool:
    """Whether this process was started by torchrun (or another launcher setting WORLD_SIZE)."""
    return "WORLD_SIZE" in os.environ


def launch_local_processes(cli_args: list[str], processes: int) -> int:
    """Run ``mvlm <cli_args>`` as `processes` local DDP ranks (torchrun --standalone); exit code.

    Rank 0 prints the run summary (JSON) to stdout as a single-process run does."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={int(processes)}", "-m", "mvlm", *cli_args]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    return subprocess.call(cmd, env=env)


# --------------------------------------------------------------------------------------------
# optimizer and schedule


def _group_of(name: str) -> str:
    if name.startswith("text_encoder."):
        return "text"
    if name.startswith("encoder."):
        return "encoder"
    return "head"


def _decays(name: str, param: torch.Tensor) -> bool:
    return param.ndim > 1 and not any(k in name for k in NO_DECAY_NAMES)


def param_groups(net: nn.Module, cfg: TrainConfig) -> list[dict]:
    """AdamW groups `{head,encoder,text}_{decay,no_decay}` (empty ones dropped); frozen params skipped."""
    mult = {"head": 1.0, "encoder": cfg.encoder_lr_mult, "text": cfg.text_lr_mult}
    groups: dict[tuple[str, bool], list] = {}
    for name, p in net.named_parameters():
        if p.requires_grad:
            groups.setdefault((_group_of(name), _decays(name, p)), []).append(p)
    out = []
    for part in ("head", "encoder", "text"):
        for decay in (True, False):
            params = groups.get((part, decay))
            if params:
                lr = cfg.lr * mult[part]
                out.append({"params": params, "name": f"{part}_{'decay' if decay else 'no_decay'}",
                            "lr": lr, "base_lr": lr, "weight_decay": cfg.weight_decay if decay else 0.0})
    return out


def build_optimizer(net: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    # fused: one kernel per step instead of ~10 elementwise passes (the text tower's token
    # table alone is millions of parameters); same maths as the for-each implementation
    return torch.optim.AdamW(param_groups(net, cfg), lr=cfg.lr, betas=tuple(cfg.betas), fused=True)


def bf16_usable(device: torch.device) -> bool:
    """Whether bf16 autocast is fast here: CUDA with bf16 support, or a CPU with native bf16
    (avx512_bf16 / AMX). On an AVX2-only CPU bf16 matmuls are emulated (~70x slower than fp32)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def lr_factor(step: int, cfg: TrainConfig, steps_per_epoch: int, total_steps: int) -> float:
    """Multiplier of each group's base lr at global step `step` (see module docstring)."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "cosine":
        span = max(1, total_steps - cfg.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - cfg.warmup_steps) / span)))
    if cfg.lr_drop_epoch > 0 and step >= cfg.lr_drop_epoch * steps_per_epoch:
        return cfg.lr_drop_gamma
    return 1.0


def set_lr(optimizer: torch.optim.Optimizer, factor: float) -> float:
    for group in optimizer.param_groups:
        group["lr"] = group["base_lr"] * factor
    return optimizer.param_groups[0]["lr"]


# --------------------------------------------------------------------------------------------
# the network step


class _TextAndVision(nn.Module):
    """Sentences -> text_emb -> network, inside one forward so DDP sees every parameter use."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, search: torch.Tensor, templates: list[torch.Tensor], sentences: list[str]):
        text_emb = self.net.encode_text(sentences)  # (B, L, D)
        return self.net(search, templates, text_emb), text_emb


def _to(batch: TrainingBatch, device: torch.device) -> TrainingBatch:
    return dataclasses.replace(
        batch,
        search=batch.search.to(device, non_blocking=True),
        templates=[t.to(device, non_blocking=True) for t in batch.templates],
        boxes=batch.boxes.to(device),
        present=batch.present.to(device),
    )


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: TrainingBatch,
               cfg: TrainConfig, device: torch.device, bf16: bool = False) -> dict[str, float]:
    """Forward (bf16 autocast when on), loss in fp32, backward, clip, AdamW step."""
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
        out, text_emb = model(batch.search, batch.templates, batch.sentences)
    loss, terms = mvlm_loss(out, text_emb, batch.boxes, batch.present, cfg.loss)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if cfg.grad_clip > 0:
        params = [p for g in optimizer.param_groups for p in g["params"]]
        terms["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
    optimizer.step()
    return terms


# --------------------------------------------------------------------------------------------
# checkpoints


def _atomic_torch_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def save_epoch(out_dir: Path, epoch: int, step: int, net: nn.Module, optimizer: torch.optim.Optimizer,
               cfg: TrainConfig, schedule_steps: Optional[int] = None) -> Path:
    """Net (safetensors) then training state; the state file is written last so its presence
    marks a complete epoch checkpoint."""
    from mvlm.model.checkpoint import save_checkpoint

    net_path = out_dir / f"epoch_{epoch:04d}.safetensors"
    save_checkpoint(net, net_path, mode=cfg.mode, extra={"epoch": epoch, "step": step})
    state = {
        "epoch": epoch,
        "step": step,
        "optimizer": optimizer.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "config": json.dumps(to_dict(cfg), sort_keys=True),
    }
    if schedule_steps is not None:  # a schedule fitted to the cap (fit_schedule_to_cap)
        state["schedule_steps"] = int(schedule_steps)
    _atomic_torch_save(state, out_dir / f"epoch_{epoch:04d}.state.pt")
    return net_path


def latest_epoch(out_dir: Path) -> Optional[int]:
    """Highest epoch with both its net and its state file, or None."""
    done = []
    for path in out_dir.glob("epoch_*.safetensors"):
        m = _EPOCH_FILE.search(path.name)
        if m and (out_dir / f"epoch_{m.group(1)}.state.pt").is_file():
            done.append(int(m.group(1)))
    return max(done) if done else None


def load_epoch(out_dir: Path, epoch: int, net: nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, Optional[int]]:
    """Restore net + optimizer from epoch `epoch`; returns the global step to continue from and
    the schedule length fitted to the cap (None when the run did not fit one)."""
    from mvlm.model.checkpoint import CheckpointError, load_state_dict_strict, read_state_dict

    net_path = out_dir / f"epoch_{epoch:04d}.safetensors"
    state_path = out_dir / f"epoch_{epoch:04d}.state.pt"
    load_state_dict_strict(net, read_state_dict(net_path), str(net_path))
    try:
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        optimizer.load_state_dict(state["optimizer"])
    except Exception as exc:  # any unreadable / mismatched state file is reported by name
        raise CheckpointError(f"{state_path}: cannot restore the training state: {exc}") from exc
    fitted = state.get("schedule_steps")
    return int(state["step"]), (None if fitted is None else int(fitted))


# --------------------------------------------------------------------------------------------
# logs


class RunLog:
    """`train_log.csv` (per step) and `epochs.json` (per epoch) in the output folder (rank 0)."""

    def __init__(self, out_dir: Path, resume_step: int):
        self.csv_path = out_dir / "train_log.csv"
        self.json_path = out_dir / "epochs.json"
        rows = []
        if resume_step > 0 and self.csv_path.is_file():  # drop rows of the interrupted epoch
            with self.csv_path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) < resume_step]
        self.epochs = []
        if resume_step > 0 and self.json_path.is_file():
            self.epochs = [e for e in json.loads(self.json_path.read_text()) if e["end_step"] <= resume_step]
        self._file = self.csv_path.open("w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=LOG_FIELDS, extrasaction="ignore")
        self._writer.writeheader()
        self._writer.writerows(rows)
        self._file.flush()

    def step(self, row: dict) -> None:
        self._writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self._file.flush()

    def epoch(self, entry: dict) -> None:
        self.epochs.append(entry)
        tmp = self.json_path.with_name(self.json_path.name + ".tmp")
        tmp.write_text(json.dumps(self.epochs, indent=2) + "\n")
        os.replace(tmp, self.json_path)

    def close(self) -> None:
        self._file.close()


class _EpochStats:
    def __init__(self):
        self.sums: dict[str, float] = {}
        self.steps = 0
        self.samples = 0
        self.data_s = 0.0
        self.step_s = 0.0

    def add(self, terms: dict[str, float], samples: int, data_s: float, step_s: float) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.steps += 1
        self.samples += samples
        self.data_s += data_s
        self.step_s += step_s

    def summary(self) -> dict:
        n = max(1, self.steps)
        busy = self.data_s + self.step_s
        return {
            **{k: v / n for k, v in self.sums.items()},
            "samples_per_s": self.samples / busy if busy else 0.0,
            "data_fraction": self.data_s / busy if busy else 0.0,
        }


# --------------------------------------------------------------------------------------------
# the run


def _identity(batch):
    return batch


def _seed_torch(seed: int, epoch: int, rank: int) -> None:
    torch.manual_seed((int(seed) * 1_000_003 + int(epoch) * 7_919 + int(rank)) % (2**63 - 1))


def _model_cfg(cfg: TrainConfig):
    values = {**cfg.model, "template_free": cfg.mode == "tf"}
    return model_config(values, preset=cfg.model.get("preset", cfg.preset))


def _build_network(cfg: TrainConfig, env: DistEnv, build_net: Optional[Callable[[], nn.Module]]) -> nn.Module:
    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    if build_net is None:
        from mvlm.model.net import build_model

        net = build_model(_model_cfg(cfg))
    else:
        net = build_net()
    return net.to(env.device)


def _default_sampler(cfg: TrainConfig, net: nn.Module) -> TrainingSampler:
    ncfg = net.cfg
    return TrainingSampler(
        load_training_sequences(cfg.datasets), cfg.sampling, ncfg.encoder.search_size,
        ncfg.encoder.template_size, 0 if ncfg.template_free else ncfg.num_templates,
    )


def _restore(out_dir: Path, net: nn.Module, optimizer: torch.optim.Optimizer,
             steps_per_epoch: int) -> tuple[Optional[int], int, Optional[int]]:
    """(last finished epoch or None, global step to continue from, fitted schedule length or None)."""
    last = latest_epoch(out_dir)
    if last is None:
        return None, 0, None
    step, fitted = load_epoch(out_dir, last, net, optimizer)
    if step != (last + 1) * steps_per_epoch:
        from mvlm.model.checkpoint import CheckpointError

        raise CheckpointError(
            f"{out_dir}/epoch_{last:04d}.state.pt: ends at step {step}, but epoch {last} ends at step "
            f"{(last + 1) * steps_per_epoch} with this config: batch_size or samples_per_epoch changed")
    return last, step, fitted


def _wrap(net: nn.Module, env: DistEnv) -> nn.Module:
    model: nn.Module = _TextAndVision(net)
    if env.distributed:
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[env.local_rank] if env.device.type == "cuda" else None,
            find_unused_parameters=True, broadcast_buffers=False,
        )
    return model


def train(
    cfg: TrainConfig,
    resume: bool = False,
    build_net: Optional[Callable[[], nn.Module]] = None,
    sampler: Optional[TrainingSampler] = None,
    progress: bool = True,
) -> dict:
    """Train per `cfg`; returns a summary dict. `build_net`/`sampler` replace the defaults
    (`model.net.build_model` for the preset, the sequences of `cfg.datasets`)."""
    env = init_distributed(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(cfg.out_dir)
    if env.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    net = _build_network(cfg, env, build_net)
    optimizer = build_optimizer(net, cfg)
    sampler = sampler or _default_sampler(cfg, net)
    steps_per_epoch = cfg.sampling.samples_per_epoch // cfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"sampling.samples_per_epoch ({cfg.sampling.samples_per_epoch}) < batch_size ({cfg.batch_size})")
    total_steps = steps_per_epoch * cfg.epochs
    last, step, fitted = _restore(out_dir, net, optimizer, steps_per_epoch) if resume else (None, 0, None)
    # the cosine's length: planned, fitted to the cap after warmup, or as fitted before a resume
    schedule_steps = fitted if fitted is not None else total_steps
    schedule_fitted = fitted is not None  # saved with each epoch from then on
    fit_from = max(step, cfg.warmup_steps + FIT_SETTLE)  # the first steps carry start-up costs
    fit_at = fit_from + FIT_WINDOW
    fit = (fitted is None and cfg.fit_schedule_to_cap and cfg.max_minutes > 0 and cfg.schedule == "cosine"
           and fit_at < total_steps)
    next_fit = fit_at if fit else None  # the step after which the schedule is (re)fitted
    if env.distributed:
        dist.barrier()

    model = _wrap(net, env)
    batches = StepBatches(sampler, cfg.seed, cfg.batch_size, steps_per_epoch, total_steps,
                          env.rank, env.world_size)
    loader = torch.utils.data.DataLoader(
        batches, batch_size=None, sampler=range(step, total_steps), collate_fn=_identity,
        num_workers=cfg.num_workers, persistent_workers=cfg.num_workers > 0,
        pin_memory=env.device.type == "cuda",
    )
    log = RunLog(out_dir, step) if env.is_main else None
    bf16 = cfg.bf16 and bf16_usable(env.device)
    if cfg.bf16 and not bf16 and env.is_main:
        warnings.warn(f"bf16 autocast requested but {env.device} has no native bf16: training in fp32", stacklevel=2)
    summary = {"out_dir": str(out_dir), "world_size": env.world_size, "resumed_from_epoch": last,
               "steps_per_epoch": steps_per_epoch, "stopped_early": False, "bf16": bf16,
               "planned_steps": total_steps}
    bar = None
    if env.is_main and progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=step, desc=f"train {cfg.mode}", unit="step", dynamic_ncols=True)

    t_start = time.perf_counter()
    model.train()
    epoch = step // steps_per_epoch
    stats = _EpochStats()
    data_iter = iter(loader)
    t_data = time.perf_counter()
    _seed_torch(cfg.seed, epoch, env.rank)
    t_window = t_start
    while step < schedule_steps:
        if fit and step == fit_from:
            t_window = time.perf_counter()
        batch = _to(next(data_iter), env.device)
        t_compute = time.perf_counter()
        lr = set_lr(optimizer, lr_factor(step, cfg, steps_per_epoch, schedule_steps))
        terms = train_step(model, optimizer, batch, cfg, env.device, bf16)
        data_s, step_s = t_compute - t_data, time.perf_counter() - t_compute
        n = len(batch) * env.world_size
        stats.add(terms, n, data_s, step_s)
        step += 1
        if log:
            log.step({"step": step - 1, "epoch": epoch, **terms, "lr": lr,
                      "samples_per_s": n / (data_s + step_s), "data_s": data_s, "step_s": step_s})
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{terms['loss']:.3f}", iou=f"{terms['iou']:.2f}")
        if step % steps_per_epoch == 0:
            if env.is_main:
                save_epoch(out_dir, epoch, step, net, optimizer, cfg,
                           schedule_steps if schedule_fitted else None)
                log.epoch({"epoch": epoch, "end_step": step, "lr": lr, **stats.summary(),
                           "wall_s": time.perf_counter() - t_start})
            if env.distributed:
                dist.barrier()
            epoch += 1
            stats = _EpochStats()
            _seed_torch(cfg.seed, epoch, env.rank)
        if step == next_fit:
            now = time.perf_counter()
            schedule_steps = fitted_total_steps(total_steps, step, now - t_start, now - t_window,
                                                step - fit_from, cfg.max_minutes, env)
            fit, schedule_fitted, next_fit = False, True, step + REFIT_EVERY
            if bar:
                bar.total = schedule_steps
                bar.refresh()
        if cfg.max_minutes > 0 and _out_of_time(t_start, cfg.max_minutes, env):
            summary["stopped_early"] = True
            break
        t_data = time.perf_counter()

    if bar:
        bar.close()
    summary.update({"steps": step, "schedule_steps": schedule_steps, "epochs_done": step // steps_per_epoch,
                    "train_wall_s": time.perf_counter() - t_start})
    if env.is_main:
        _finish(out_dir, net, cfg, log, stats, epoch, step, summary, t_start)
    if env.distributed:
        dist.barrier()
    return summary


def _finish(out_dir: Path, net: nn.Module, cfg: TrainConfig, log: RunLog, stats: _EpochStats,
            epoch: int, step: int, summary: dict, t_start: float) -> None:
    """Rank 0: log a partial epoch cut by max_minutes, write final.safetensors."""
    from mvlm.model.checkpoint import save_checkpoint

    if stats.steps:
        log.epoch({"epoch": epoch, "end_step": step, "partial": True, **stats.summary(),
                   "wall_s": time.perf_counter() - t_start})
    final = save_checkpoint(net, out_dir / "final.safetensors", mode=cfg.mode,
                            extra={"step": step, "stopped_early": summary["stopped_early"]})
    summary["final"] = str(final)
    summary["last_epoch"] = log.epochs[-1] if log.epochs else None
    log.close()


# Timed 20 steps right after warmup, the box recipe ran those 1.35x slower than its later steps
# (start-up effects: first reads of the frame files, ranks waiting for each other), so the fitted
# cosine ended at 70 % of the cap. The speed also drifts later in a run (one box run: 0.219 s a
# step over its fit window, 0.193 after it, and it ended 66 s before its cap with a single fit),
# hence the refits; each moves the cosine's length, so the lr shifts by a few percent at that step.
FIT_SETTLE = 100  # steps after warmup that run untimed
FIT_WINDOW = 100  # steps timed after those to fit the schedule to the cap
REFIT_EVERY = 200  # steps between refits of the schedule after the first fit
FIT_MARGIN = 1.1  # later steps run a little slower (epoch checkpoints, a busier machine)


def fitted_total_steps(total_steps: int, step: int, elapsed_s: float, window_s: float, window: int,
                       max_minutes: float, env: DistEnv) -> int:
    """Steps of a run that must end by `max_minutes`: `step` done in `elapsed_s`, the last
    `window` of them in `window_s`, so the rest is expected at m·window_s/window s per step:

        total = min(total_steps, step + floor((60·max_minutes − elapsed_s) / (m·window_s/window)))

    with m = FIT_MARGIN, never below `step` + 1. Rank 0's figure is broadcast so every rank
    stops after the same step."""
    per_step = max(FIT_MARGIN * window_s / max(window, 1), 1e-9)
    fit = step + int(max(0.0, 60.0 * max_minutes - elapsed_s) // per_step)
    value = torch.tensor([float(min(total_steps, max(step + 1, fit)))])
    if env.distributed:
        value = value.to(env.device)
        dist.broadcast(value, src=0)
    return int(value.item())


def _out_of_time(t_start: float, max_minutes: float, env: DistEnv) -> bool:
    """Rank 0's clock decides, so every rank stops after the same step."""
    flag = torch.tensor([float(time.perf_counter() - t_start >= max_minutes * 60.0)])
    if env.distributed:
        flag = flag.to(env.device)
        dist.broadcast(flag, src=0)
    return bool(flag.item())


# --------------------------------------------------------------------------------------------
# sanity metric


GROUNDING_SIZE_EDGES = (12.0, 24.0, 48.0)  # target side sqrt(w·h) in frame pixels
GROUNDING_VIEWS = ("local", "global_letterbox", "global", "global_tiles")  # the tracker's views of a frame


def size_bin_labels(edges: tuple[float, ...] = GROUNDING_SIZE_EDGES) -> list[str]:
    """``<12``, ``12-24``, ``24-48``, ``>=48`` for the default edges (frame pixels)."""
    return [f"<{edges[0]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(edges, edges[1:])] + [f">={edges[-1]:g}"]


def size_bin(side: float, edges: tuple[float, ...] = GROUNDING_SIZE_EDGES) -> str:
    """Label of the bin holding a target side sqrt(w·h); an edge belongs to the bin above it."""
    import bisect

    return size_bin_labels(edges)[bisect.bisect_right(edges, side)]


@torch.no_grad()
def grounding_accuracy(net: nn.Module, sequences: list, per_sequence: int = 12, seed: int = 0,
                       search_factor: float = 4.0, shuffle_sentences: bool = False,
                       template_factor: float = 2.0, tile_zoom: float = 0.0,
                       size_edges: tuple[float, ...] = GROUNDING_SIZE_EDGES) -> dict:
    """Per-frame grounding: share of frames where the predicted centre (argmax cell + offset) lies
    inside the GT box, for the tracker's views of a frame: ``global`` (stretched),
    ``global_letterbox``, ``global_tiles`` (only with `tile_zoom` > 0: the tiled global pass,
    `crops.tile_views` at that zoom; the window with the highest score peak answers) and
    ``local`` (search_factor crop centred on the GT box).

    `per_sequence` visible frames are drawn per sequence (seeded). ``shuffle_sentences`` gives each
    sequence the next sequence's sentence: if accuracy does not drop, the network localises
    *an* object without reading the sentence. A network with templates gets them as the tracker
    does: cut from the first visible frame's GT box (`template_factor`). ``chance_area`` = mean GT
    area share of the global view (what a uniformly random centre scores). ``by_size`` splits
    each view's accuracy by the target side sqrt(w·h) in frame pixels (`size_bin`), because a
    whole-frame view shrinks small targets below one encoder token; ``frames_by_size`` counts them.
    """
    import numpy as np

    from mvlm.data.crops import box_view, global_view, tile_views, to_network_input

    was_training = net.training
    net.eval()
    size = net.cfg.encoder.search_size
    template_free = getattr(net.cfg, "template_free", True)
    device = next(net.parameters()).device
    rng = np.random.default_rng(seed)
    measured = [v for v in GROUNDING_VIEWS if v != "global_tiles" or tile_zoom > 0]
    hits: dict[str, list[bool]] = {name: [] for name in measured}
    bins: list[str] = []
    area = []
    for k, seq in enumerate(sequences):
        sentence = sequences[(k + 1) % len(sequences)].language if shuffle_sentences else seq.language
        text_emb = net.encode_text([sentence])
        visible = np.flatnonzero(seq.valid_mask()[: len(seq.frames)])
        if not len(visible):
            continue
        templates = None
        if not template_free:
            first = int(visible[0])
            crop, _ = box_view(seq.read_frame(first), seq.boxes[first], template_factor,
                               net.cfg.encoder.template_size)
            templates = [to_network_input(crop).to(device)] * net.cfg.num_templates
        for idx in rng.choice(visible, size=min(per_sequence, len(visible)), replace=False):
            frame, box = seq.read_frame(int(idx)), seq.boxes[idx]
            bins.append(size_bin(float(np.sqrt(box[2] * box[3])), size_edges))
            views = {"global": global_view(frame, size), "global_letterbox": global_view(frame, size, letterbox=True),
                     "local": box_view(frame, box, search_factor, size)}
            for name, (image, t) in views.items():
                out = net(to_network_input(image).to(device), templates, text_emb)
                cx, cy = (out["pred_boxes"][0, 0, :2].float().cpu().numpy() * size).tolist()
                x, y, w, h = t.to_view(box)
                hits[name].append(bool(x <= cx <= x + w and y <= cy <= y + h))
                if name == "global":
                    area.append(w * h / size / size)
            if tile_zoom <= 0:
                continue
            tiles = tile_views(frame, size, tile_zoom)
            n = len(tiles)
            out = net(to_network_input([image for image, _ in tiles]).to(device),
                      None if templates is None else [t.expand(n, -1, -1, -1) for t in templates],
                      text_emb.expand(n, -1, -1))
            best = int(out["score_map"].flatten(1).amax(dim=1).argmax())
            cx, cy = (out["pred_boxes"][best, 0, :2].float().cpu().numpy() * size).tolist()
            x, y, w, h = tiles[best][1].to_view(box)
            hits["global_tiles"].append(bool(x <= cx <= x + w and y <= cy <= y + h))
    net.train(was_training)
    result: dict = {name: float(np.mean(v)) if v else 0.0 for name, v in hits.items()}
    labels = size_bin_labels(size_edges)
    result["by_size"] = {
        name: {b: float(np.mean([h for h, hb in zip(hits[name], bins) if hb == b]))
               for b in labels if b in bins}
        for name in measured
    }
    result["frames_by_size"] = {b: bins.count(b) for b in labels if b in bins}
    return {**result, "frames": len(hits["global"]), "chance_area": float(np.mean(area)) if area else 0.0}
