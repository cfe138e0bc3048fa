"""Training loop: one process, or many under torchrun (DDP) with the same semantics.

- Step g draws its global batch of B samples from the per-epoch sample list
  (`sampling.StepBatches`); with W processes each rank takes B/W of them, DDP averages the
  gradients. Sample i of epoch e depends only on (seed, e, i). B = batch_size
  (`batch_per: global`, the default) or W·batch_size (`batch_per: process`, the reference's
  semantics); `micro_batch` splits each process's share into gradient-accumulation chunks.
- The torch RNG (dropout, drop-path) is reseeded at every epoch from (seed, epoch, rank), so a run
  resumed from an epoch checkpoint continues to exactly the weights of an uninterrupted run.
- Optimizer (`compat: corrected`, the default): AdamW with param groups head (lr), encoder
  (lr·encoder_lr_mult), text (text_proj and a trainable tower, lr·text_lr_mult); no weight decay
  on norms, biases, gammas, pos_embed, cls_token. `compat: reference` builds the released
  trainer's two name-based groups instead, decay on everything (docs/training.md).
- LR factor at global step g:  warmup  f = (g+1)/warmup_steps  for g < warmup_steps, then
  step:   f = 1 before epoch lr_drop_epoch, lr_drop_gamma from it on (0 = never drops);
  cosine: f = ½(1 + cos(π·(g − warmup)/(total − warmup))), total = epochs·steps_per_epoch.
- A run is defined by its steps, never by the clock: the same config, seed and machine give the
  same weights (DDP included). `max_minutes` is an opt-in cap that stops the run where it is.
- Precision (`precision: auto`): bf16 autocast only where it is native (`choose_precision`); the
  choice and its reason go to the log, the summary and the checkpoint metadata.
- Each epoch (rank 0): `epoch_XXXX.safetensors` (net, `checkpoint.save_checkpoint`, frozen text
  tower left out) + `epoch_XXXX.state.safetensors` (optimizer tensors; param groups, step, epoch
  and the training config as metadata), both written tmp + os.replace, byte-identical for
  identical runs. `--resume` refuses a folder whose config differs in anything that shapes the
  weights, naming the keys. At the end (or at the cap) `final.safetensors`. Logs:
  `train_log.csv` (one row per step) and `epochs.json` (one entry per epoch).
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import json
import math
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.distributed as dist
from torch import nn

from mvlm.atomic import write_bytes, write_json
from mvlm.config import TrainConfig, model_config, to_dict
from mvlm.data.sampling import StepBatches, TrainingBatch, TrainingSampler, load_training_sequences
from mvlm.model.losses import mvlm_loss

NO_DECAY_NAMES = ("pos_embed", "cls_token", "gamma", "positional_embedding", "norm")
LOG_FIELDS = ["step", "epoch", "loss", "focal", "giou", "l1", "cm", "cm_inference", "iou", "lr"]
TIMING_FIELDS = ["step", "samples_per_s", "data_s", "step_s"]
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

    from mvlm.procs import die_with_parent

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           f"--nproc_per_node={int(processes)}", "-m", "mvlm", *cli_args]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    # torchrun (and through it, its ranks) ends when this launcher dies, even by SIGKILL
    return subprocess.call(cmd, env=env, preexec_fn=functools.partial(die_with_parent, os.getpid()))


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


def reference_param_groups(net: nn.Module, cfg: TrainConfig) -> list[dict]:
    """The released trainer's groups (TRAIN.TYPE text_frozen), by name: parameters whose name
    holds "clip" or "bert" are frozen (requires_grad off); group `head` = names without
    "encoder" (lr); group `encoder` = the others (lr·encoder_lr_mult) -- the Fast-iTPN body and
    also `text_encoder.text_proj`, whose name contains "encoder". Weight decay on every parameter.
    Order within a group = `named_parameters()` order."""
    head, encoder = [], []
    for name, p in net.named_parameters():
        if "clip" in name or "bert" in name:
            p.requires_grad_(False)
            continue
        if p.requires_grad:
            (encoder if "encoder" in name else head).append(p)
    out = []
    for part, params, lr in (("head", head, cfg.lr), ("encoder", encoder, cfg.lr * cfg.encoder_lr_mult)):
        if params:
            out.append({"params": params, "name": part, "lr": lr, "base_lr": lr, "weight_decay": cfg.weight_decay})
    return out


def optimizer_groups(net: nn.Module, cfg: TrainConfig) -> list[dict]:
    """The AdamW groups of `cfg.compat`: `param_groups` (corrected) or `reference_param_groups`."""
    return reference_param_groups(net, cfg) if cfg.compat == "reference" else param_groups(net, cfg)


def build_optimizer(net: nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    # fused: one kernel per step instead of ~10 elementwise passes (the text tower's token
    # table alone is millions of parameters); same maths as the for-each implementation
    return torch.optim.AdamW(optimizer_groups(net, cfg), lr=cfg.lr, betas=tuple(cfg.betas), fused=True)


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def choose_precision(requested: str, device: torch.device) -> tuple[bool, str]:
    """(bf16 autocast on?, reason). `auto` takes bf16 only where it is native: a GPU that
    supports it, or a CPU with avx512_bf16 or amx_bf16. oneDNN reports bf16 "supported" on any
    AVX-512 CPU, but without those flags it emulates it, 3-4x slower than fp32. The decision reads
    flags, not a timing, so a busy machine never changes it (and so never the weights)."""
    if requested == "fp32":
        return False, "precision: fp32"
    if requested == "bf16":
        return True, "precision: bf16 (requested)"
    if requested != "auto":
        raise ValueError(f"precision: {requested!r} is not one of auto, fp32, bf16")
    if device.type == "cuda":
        ok = torch.cuda.is_bf16_supported()
        return ok, f"auto: {torch.cuda.get_device_name(device)} {'has' if ok else 'lacks'} bf16"
    native = sorted(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    if native:
        return True, f"auto: the CPU has native bf16 ({', '.join(native)})"
    return False, "auto: the CPU has no native bf16 (no avx512_bf16 / amx_bf16): fp32"


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


def _chunks(batch: TrainingBatch, size: int) -> list[TrainingBatch]:
    return [dataclasses.replace(
        batch, search=batch.search[i:i + size], templates=[t[i:i + size] for t in batch.templates],
        sentences=batch.sentences[i:i + size], boxes=batch.boxes[i:i + size],
        present=batch.present[i:i + size], kinds=batch.kinds[i:i + size],
    ) for i in range(0, len(batch), size)]


def accumulated_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: TrainingBatch,
                     cfg: TrainConfig, device: torch.device, bf16: bool = False) -> dict[str, float]:
    """`train_step` over chunks of `cfg.micro_batch` samples: each chunk's loss / n_chunks is
    back-propagated (DDP synchronises on the last chunk only), then one clip and AdamW step. The
    gradient is the mean of the chunk gradients, as DDP's is the mean of its ranks'; the logged
    terms are the chunk means."""
    chunks = _chunks(batch, cfg.micro_batch)
    optimizer.zero_grad(set_to_none=True)
    sums: dict[str, float] = {}
    for k, chunk in enumerate(chunks):
        last = k == len(chunks) - 1
        sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                out, text_emb = model(chunk.search, chunk.templates, chunk.sentences)
            loss, terms = mvlm_loss(out, text_emb, chunk.boxes, chunk.present, cfg.loss)
            (loss / len(chunks)).backward()
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + float(value)
    terms = {key: value / len(chunks) for key, value in sums.items()}
    if cfg.grad_clip > 0:
        params = [p for g in optimizer.param_groups for p in g["params"]]
        terms["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip))
    optimizer.step()
    return terms


def global_batch(cfg: TrainConfig, world_size: int) -> int:
    """Samples per optimizer step over all processes (`batch_per`)."""
    return cfg.batch_size * world_size if cfg.batch_per == "process" else cfg.batch_size


# --------------------------------------------------------------------------------------------
# checkpoints


STATE_SUFFIX = ".state.safetensors"


def save_epoch(out_dir: Path, epoch: int, step: int, net: nn.Module, optimizer: torch.optim.Optimizer,
               cfg: TrainConfig, extra: Optional[dict] = None) -> Path:
    """Net then training state, both safetensors; the state file is written last so its presence
    marks a complete epoch checkpoint. The state holds the optimizer's tensors, and as metadata
    its param groups, the epoch, the step and the training config: plain data, and the same
    bytes for the same run (torch.save would add a random serialization id)."""
    from mvlm.model.checkpoint import safetensors_bytes, save_checkpoint

    net_path = out_dir / f"epoch_{epoch:04d}.safetensors"
    save_checkpoint(net, net_path, mode=cfg.mode, extra={"epoch": epoch, "step": step, **(extra or {})})
    optim = optimizer.state_dict()
    tensors = {f"optimizer.{index}.{name}": value.detach().cpu().contiguous()
               for index, entries in optim["state"].items() for name, value in entries.items()}
    meta = {"epoch": str(epoch), "step": str(step), "param_groups": json.dumps(optim["param_groups"]),
            "config": json.dumps(saved_config(cfg), sort_keys=True)}
    write_bytes(out_dir / f"epoch_{epoch:04d}{STATE_SUFFIX}", safetensors_bytes(tensors, meta))
    return net_path


def latest_epoch(out_dir: Path) -> Optional[int]:
    """Highest epoch with both its net and its state file, or None."""
    done = []
    for path in out_dir.glob("epoch_*.safetensors"):
        m = _EPOCH_FILE.search(path.name)
        if m and (out_dir / f"epoch_{m.group(1)}{STATE_SUFFIX}").is_file():
            done.append(int(m.group(1)))
    return max(done) if done else None


def read_state(path: Path) -> dict:
    """An epoch's training state: {epoch, step, config (dict), optimizer (a state dict)}."""
    from safetensors import safe_open

    from mvlm.model.checkpoint import CheckpointError

    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            entries: dict[int, dict[str, torch.Tensor]] = {}
            for key in f.keys():
                _, index, name = key.split(".", 2)
                entries.setdefault(int(index), {})[name] = f.get_tensor(key)
        return {"epoch": int(meta["epoch"]), "step": int(meta["step"]), "config": json.loads(meta["config"]),
                "optimizer": {"state": entries, "param_groups": json.loads(meta["param_groups"])}}
    except Exception as exc:  # any unreadable state file is reported by name
        raise CheckpointError(f"{path}: cannot read the training state: {exc}") from exc


def load_epoch(out_dir: Path, epoch: int, net: nn.Module, optimizer: torch.optim.Optimizer,
               cfg: Optional[TrainConfig] = None) -> int:
    """Restore net + optimizer from epoch `epoch`; returns the global step to continue from.
    With `cfg`, a state saved under another training config is refused (`config_changes`)."""
    from mvlm.model.checkpoint import CheckpointError, load_state_dict_strict, read_state_dict

    net_path = out_dir / f"epoch_{epoch:04d}.safetensors"
    state_path = out_dir / f"epoch_{epoch:04d}{STATE_SUFFIX}"
    state = read_state(state_path)
    if cfg is not None:
        changed = config_changes(state["config"], saved_config(cfg))
        if changed:
            raise CheckpointError(
                f"{state_path}: cannot resume: the training config changed since this run started "
                f"({'; '.join(changed)}). Start a new out_dir, or restore those values.")
    load_state_dict_strict(net, read_state_dict(net_path), str(net_path))
    try:
        optimizer.load_state_dict(state["optimizer"])
    except Exception as exc:
        raise CheckpointError(f"{state_path}: cannot restore the optimizer state: {exc}") from exc
    return state["step"]


# keys added after runs had been saved, with the default that keeps the earlier behaviour: the
# saved config leaves them out while they hold it, so earlier state files still resume and a
# run that does not use them writes the same bytes as before they existed
LATER_KEYS = {"compat": "corrected", "batch_per": "global", "micro_batch": 0, "splits": {},
              "sampling.flip_swaps_words": None, "sampling.grayscale": 0.0}


def saved_config(cfg: TrainConfig) -> dict:
    """`to_dict(cfg)` less the LATER_KEYS that hold their default."""
    out = to_dict(cfg)
    for dotted, default in LATER_KEYS.items():
        *parents, key = dotted.split(".")
        node = out
        for part in parents:
            node = node[part]
        if key in node and node[key] == default:
            del node[key]
    return out


# keys that may change between a run and its resume: where it runs, not what it computes
RESUME_FREE_KEYS = ("out_dir", "device", "threads", "processes", "num_workers", "max_minutes", "validation")


def config_changes(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """`key: saved -> current` for every training-config value that differs (nested keys dotted),
    except RESUME_FREE_KEYS at the top level."""
    out = []
    for key in sorted(set(saved) | set(current)):
        if not prefix and key in RESUME_FREE_KEYS:
            continue
        a, b = saved.get(key, "<unset>"), current.get(key, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, f"{prefix}{key}.")
        elif a != b and not (isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and list(a) == list(b)):
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


# --------------------------------------------------------------------------------------------
# logs


class _StepCsv:
    """A per-step CSV; on resume, the rows of steps before `resume_step` are kept."""

    def __init__(self, path: Path, fields: list[str], resume_step: int):
        rows = []
        if resume_step > 0 and path.is_file():  # drop rows of the interrupted epoch
            with path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) < resume_step]
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("w", newline="")
        self._writer = csv.DictWriter(self._file, fieldnames=fields, extrasaction="ignore")
        self._writer.writeheader()
        self._writer.writerows(rows)
        self._file.flush()

    def write(self, row: dict) -> None:
        self._writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class RunLog:
    """Rank 0's logs: `train_log.csv` (per step) and `epochs.json` (per epoch) in the output
    folder, which hold only what the seed and config determine, and the timings in a file of
    their own (`timing_path`, per step), so two runs of one config leave identical folders."""

    def __init__(self, out_dir: Path, resume_step: int, timing_path: Path):
        self.json_path = out_dir / "epochs.json"
        self._steps = _StepCsv(out_dir / "train_log.csv", LOG_FIELDS, resume_step)
        self._times = _StepCsv(timing_path, TIMING_FIELDS, resume_step)
        self.epochs = []
        if resume_step > 0 and self.json_path.is_file():
            self.epochs = [e for e in json.loads(self.json_path.read_text()) if e["end_step"] <= resume_step]

    def step(self, row: dict) -> None:
        self._steps.write(row)
        self._times.write(row)

    def epoch(self, entry: dict) -> None:
        self.epochs.append(entry)
        write_json(self.json_path, self.epochs)

    def close(self) -> None:
        self._steps.close()
        self._times.close()


class _EpochStats:
    """Mean loss terms over an epoch's steps."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.steps = 0

    def add(self, terms: dict[str, float]) -> None:
        for k, v in terms.items():
            self.sums[k] = self.sums.get(k, 0.0) + v
        self.steps += 1

    def summary(self) -> dict:
        return {k: v / max(1, self.steps) for k, v in self.sums.items()}


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


def sampling_config(cfg: TrainConfig):
    """`cfg.sampling` with the choices left to `compat` made (flip_swaps_words)."""
    if cfg.sampling.flip_swaps_words is None:
        return dataclasses.replace(cfg.sampling, flip_swaps_words=cfg.compat != "reference")
    return cfg.sampling


def _default_sampler(cfg: TrainConfig, net: nn.Module) -> TrainingSampler:
    ncfg = net.cfg
    return TrainingSampler(
        load_training_sequences(cfg.datasets, splits=cfg.splits, guard=True), sampling_config(cfg),
        ncfg.encoder.search_size,
        ncfg.encoder.template_size, 0 if ncfg.template_free else ncfg.num_templates,
    )


def _restore(out_dir: Path, net: nn.Module, optimizer: torch.optim.Optimizer,
             steps_per_epoch: int, cfg: TrainConfig) -> tuple[Optional[int], int, int]:
    """(last finished epoch or None, global step to continue from, steps the saved run had
    logged by then). With `batch_per: process` the steps of an epoch depend on the number of
    processes, so a run resumed on another number continues at the next epoch's first step as
    this world counts them (docs/training.md)."""
    last = latest_epoch(out_dir)
    if last is None:
        return None, 0, 0
    step = load_epoch(out_dir, last, net, optimizer, cfg)
    if cfg.batch_per == "process":
        return last, (last + 1) * steps_per_epoch, step
    if step != (last + 1) * steps_per_epoch:
        from mvlm.model.checkpoint import CheckpointError

        raise CheckpointError(
            f"{out_dir}/epoch_{last:04d}{STATE_SUFFIX}: ends at step {step}, but epoch {last} ends at step "
            f"{(last + 1) * steps_per_epoch} with this config: batch_size or samples_per_epoch changed")
    return last, step, step


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
    if under_launcher():
        from mvlm.procs import die_with_parent

        die_with_parent()  # a rank never outlives its torchrun
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    gbatch = global_batch(cfg, env.world_size)
    if gbatch % env.world_size:
        raise ValueError(f"batch_size {gbatch} is not divisible by {env.world_size} processes")
    local_batch = gbatch // env.world_size
    if cfg.micro_batch < 0 or (cfg.micro_batch and local_batch % cfg.micro_batch):
        raise ValueError(f"micro_batch {cfg.micro_batch} does not divide the per-process batch {local_batch}")
    accumulate = 0 < cfg.micro_batch < local_batch
    out_dir = Path(cfg.out_dir)
    if env.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    net = _build_network(cfg, env, build_net)
    optimizer = build_optimizer(net, cfg)
    sampler = sampler or _default_sampler(cfg, net)
    steps_per_epoch = cfg.sampling.samples_per_epoch // gbatch
    if steps_per_epoch < 1:
        raise ValueError(f"sampling.samples_per_epoch ({cfg.sampling.samples_per_epoch}) < the global batch ({gbatch})")
    total_steps = steps_per_epoch * cfg.epochs
    last, step, logged = _restore(out_dir, net, optimizer, steps_per_epoch, cfg) if resume else (None, 0, 0)
    if env.distributed:
        dist.barrier()

    model = _wrap(net, env)
    batches = StepBatches(sampler, cfg.seed, gbatch, steps_per_epoch, total_steps,
                          env.rank, env.world_size)
    loader = torch.utils.data.DataLoader(
        batches, batch_size=None, sampler=range(step, total_steps), collate_fn=_identity,
        num_workers=cfg.num_workers, persistent_workers=cfg.num_workers > 0,
        pin_memory=env.device.type == "cuda",
    )
    timing_path = Path(cfg.timings) if cfg.timings else out_dir.parent / f"{out_dir.name}.timings.csv"
    log = RunLog(out_dir, logged, timing_path) if env.is_main else None  # rows after the checkpoint go
    bf16, precision_reason = choose_precision(cfg.precision, env.device)
    precision = {"precision": "bf16" if bf16 else "fp32", "precision_reason": precision_reason}
    if env.is_main:
        print(f"train {cfg.mode}: {precision['precision']} ({precision_reason}); "
              f"{env.world_size} process(es) on {env.device}, global batch {gbatch} "
              f"({local_batch} per process{f' in chunks of {cfg.micro_batch}' if accumulate else ''}), "
              f"{steps_per_epoch} steps per epoch",
              file=sys.stderr, flush=True)
    summary = {"out_dir": str(out_dir), "world_size": env.world_size, "resumed_from_epoch": last,
               **({"global_batch": gbatch} if gbatch != cfg.batch_size else {}),
               "steps_per_epoch": steps_per_epoch, "stopped_early": False, **precision,
               "planned_steps": total_steps}
    bar = None
    if env.is_main and progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=step, desc=f"train {cfg.mode}", unit="step", dynamic_ncols=True)

    t_start = time.perf_counter()
    model.train()
    epoch = step // steps_per_epoch
    stats = _EpochStats()
    samples, busy_s = 0, 0.0
    data_iter = iter(loader)
    t_data = time.perf_counter()
    _seed_torch(cfg.seed, epoch, env.rank)
    while step < total_steps:
        batch = _to(next(data_iter), env.device)
        t_compute = time.perf_counter()
        lr = set_lr(optimizer, lr_factor(step, cfg, steps_per_epoch, total_steps))
        step_fn = accumulated_step if accumulate else train_step
        terms = step_fn(model, optimizer, batch, cfg, env.device, bf16)
        data_s, step_s = t_compute - t_data, time.perf_counter() - t_compute
        n = len(batch) * env.world_size
        stats.add(terms)
        samples += n
        busy_s += data_s + step_s
        step += 1
        if log:
            log.step({"step": step - 1, "epoch": epoch, **terms, "lr": lr,
                      "samples_per_s": n / (data_s + step_s), "data_s": data_s, "step_s": step_s})
        if bar:
            bar.update(1)
            bar.set_postfix(loss=f"{terms['loss']:.3f}", iou=f"{terms['iou']:.2f}")
        if step % steps_per_epoch == 0:
            if env.is_main:
                save_epoch(out_dir, epoch, step, net, optimizer, cfg, precision)
                log.epoch({"epoch": epoch, "end_step": step, "lr": lr, **stats.summary()})
            if env.distributed:
                dist.barrier()
            epoch += 1
            stats = _EpochStats()
            _seed_torch(cfg.seed, epoch, env.rank)
        if cfg.max_minutes > 0 and step < total_steps and _out_of_time(t_start, cfg.max_minutes, env):
            summary["stopped_early"] = True
            if env.is_main:
                warnings.warn(f"train {cfg.mode}: max_minutes {cfg.max_minutes} reached after {step} of "
                              f"{total_steps} steps: the schedule did not finish", stacklevel=2)
            break
        t_data = time.perf_counter()

    if bar:
        bar.close()
    summary.update({"steps": step, "epochs_done": step // steps_per_epoch, "timings": str(timing_path),
                    "train_wall_s": time.perf_counter() - t_start,
                    "samples_per_s": samples / busy_s if busy_s else 0.0})
    if env.is_main:
        _finish(out_dir, net, cfg, log, stats, epoch, step, summary, precision)
    if env.distributed:
        dist.barrier()
    return summary


def _finish(out_dir: Path, net: nn.Module, cfg: TrainConfig, log: RunLog, stats: _EpochStats,
            epoch: int, step: int, summary: dict, precision: dict) -> None:
    """Rank 0: log a partial epoch cut by max_minutes, write final.safetensors."""
    from mvlm.model.checkpoint import save_checkpoint

    if stats.steps:
        log.epoch({"epoch": epoch, "end_step": step, "partial": True, **stats.summary()})
    final = save_checkpoint(net, out_dir / "final.safetensors", mode=cfg.mode,
                            extra={"step": step, "stopped_early": summary["stopped_early"], **precision})
    summary["final"] = str(final)
    summary["last_epoch"] = log.epochs[-1] if log.epochs else None
    log.close()


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
GROUNDING_VIEWS = ("local", "global_letterbox", "global")  # the tracker's views of a frame


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
                       template_factor: float = 2.0,
                       size_edges: tuple[float, ...] = GROUNDING_SIZE_EDGES) -> dict:
    """Per-frame grounding: share of frames where the predicted centre (argmax cell + offset) lies
    inside the GT box, for the tracker's views of a frame: ``global`` (stretched),
    ``global_letterbox`` and ``local`` (search_factor crop centred on the GT box).

    `per_sequence` visible frames are drawn per sequence (seeded). ``shuffle_sentences`` gives each
    sequence the next sequence's sentence: if accuracy does not drop, the network localises
    *an* object without reading the sentence. A network with templates gets them as the tracker
    does: cut from the first visible frame's GT box (`template_factor`). ``chance_area`` = mean GT
    area share of the global view (what a uniformly random centre scores). ``by_size`` splits
    each view's accuracy by the target side sqrt(w·h) in frame pixels (`size_bin`), because a
    whole-frame view shrinks small targets below one encoder token; ``frames_by_size`` counts them.
    """
    import numpy as np

    from mvlm.data.crops import box_view, global_view, to_network_input

    was_training = net.training
    net.eval()
    size = net.cfg.encoder.search_size
    template_free = getattr(net.cfg, "template_free", True)
    device = next(net.parameters()).device
    rng = np.random.default_rng(seed)
    measured = list(GROUNDING_VIEWS)
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
