"""Typed configuration, loaded from `params.yaml`.

Every stage reads one section of `params.yaml` into a dataclass. Unknown or mistyped keys
are errors that name the full key path (``model.encoder.depths[1]: expected int, got str``),
because a silently ignored typo in an ablation is a wrong table.

Model and tracker sections accept a ``preset`` key: the preset's values are applied first and
the other keys of the section override them.
"""

from __future__ import annotations

import copy
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml


class ConfigError(ValueError):
    """A configuration value is unknown, missing or of the wrong type."""


# --------------------------------------------------------------------------------------------
# model


@dataclass
class EncoderConfig:
    """Fast-iTPN encoder sizes (docs/paper-notes.md §1.2). Patch stride is 4·2·2 = 16."""

    in_chans: int = 6
    dims: tuple[int, int, int] = (128, 256, 512)  # stride-4, stride-8, stride-16 widths
    depths: tuple[int, int, int] = (3, 3, 24)  # ConvMlp stage 1, ConvMlp stage 2, transformer
    num_heads: int = 8
    mlp_ratio: float = 3.0  # SwiGLU hidden = dim * mlp_ratio
    bridge_mlp_ratio: float = 3.0  # ConvMlp hidden = dim * bridge_mlp_ratio
    layer_scale_init: float = 0.1
    drop_path_rate: float = 0.1
    norm_eps: float = 1e-6
    search_size: int = 224
    template_size: int = 112


@dataclass
class TextConfig:
    """Text tower (open_clip config without the vision tower) and its projection."""

    clip_model: str = "ViT-L-14"  # open_clip model config the tower is built from
    context_length: int = 77
    # overrides of the open_clip text config (width, layers, heads); empty = the model's own
    width: int = 0
    layers: int = 0
    heads: int = 0
    pooling: Literal["full", "eos_only", "wo_pad"] = "full"
    frozen: bool = True
    # a trainable tower may still keep its (random or CLIP) token table fixed: with the 49408-word
    # CLIP vocabulary the table dwarfs a small tower, and its gradient and optimizer state are
    # most of a CPU step; the layers above learn to read fixed, nearly orthogonal word vectors
    train_token_embedding: bool = True
    weights: Optional[str] = None  # local file with CLIP weights; never downloaded
    # OpenAI CLIP (the paper's ViT-L/14) was trained with QuickGELU; open_clip's plain configs use GELU
    quick_gelu: bool = True
    # False = no CLIP tower: text enters as precomputed per-token hidden states of width `width`
    # (parity fixtures, cached features); encoding raw sentences is then an error
    tower: bool = True


@dataclass
class HeadConfig:
    """CENTER head: score / offset / size branches of 4 conv-BN-ReLU layers + 1x1."""

    channels: int = 256  # first hidden width; halves at each layer
    conv_type: Literal["normal", "small"] = "normal"


@dataclass
class ModelConfig:
    preset: str = "base"
    template_free: bool = True
    num_templates: int = 2  # used when template_free is false
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    text: TextConfig = field(default_factory=TextConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    pretrained_backbone: Optional[str] = None  # local 3-channel Fast-iTPN file (halfcopy)
    patchembed_init: Literal["halfcopy", "copy", "random"] = "halfcopy"

    @property
    def stride(self) -> int:
        return 16

    @property
    def feat_size(self) -> int:
        return self.encoder.search_size // self.stride

    @property
    def template_feat_size(self) -> int:
        return self.encoder.template_size // self.stride


MODEL_PRESETS: dict[str, dict[str, Any]] = {
    # The paper: Fast-iTPN-B encoder, CLIP ViT-L/14 text tower (frozen).
    "base": {},
    # CPU default: ~ViT-tiny cost or less; 128 search / 64 template at stride 16. The stride-4
    # and stride-8 stages keep their patch embedding and merges but no blocks: on 2 cores those
    # high-resolution blocks cost a quarter of a training step (steps,
    # not architecture, limit what a CPU run learns).
    "tiny": {
        "encoder": {
            "dims": [32, 64, 128],
            "depths": [0, 0, 4],
            "num_heads": 4,
            "search_size": 128,
            "template_size": 64,
            "drop_path_rate": 0.0,
        },
        "text": {
            "clip_model": "ViT-B-32",
            "context_length": 16,
            "width": 128,
            "layers": 2,
            "heads": 2,
            "pooling": "full",
            "frozen": False,
            "train_token_embedding": False,
        },
        "head": {"channels": 64},
    },
}


# --------------------------------------------------------------------------------------------
# tracker


@dataclass
class TrackerConfig:
    """Tracker parameters; docs/tracker.md explains each one. Greek names follow the paper."""

    preset: str = "tf"
    # the paper (docs/tracker.md, "Confidence")
    compat: Literal["reference", "corrected"] = "reference"  # which fixes are on by default: COMPAT_FIXES
    alpha: float = 1.0  # weight of the VL margin δcorr in κvlm
    tau: float = 0.1  # gate threshold on κmvlm: S_t = {i : κmvlm_i ≥ τ}
    omega: float = 0.4  # weight of the memory in κmvlm
    lam: float = 0.4  # EWMA factor of the memory
    psi_out: float = 0.0  # IoU at or below which another candidate is a distractor
    template_free: bool = True  # sentence only (no templates); False = box + sentence
    search_factor: float = 4.0  # local crop side = ⌈√(w·h)·search_factor⌉
    template_factor: float = 2.0  # template crop side, same formula
    window: bool = True  # Hann window on the score map
    num_templates: int = 2  # template slots (box mode): slot 0 fixed, the newest replaced
    update_interval: int = 25  # frames between template updates (0 = never)
    update_threshold: float = 0.7  # a template update needs l of the chosen cell above this
    clip_margin: float = 10.0  # an output box keeps at least this many px of width and height
    # ablations (docs/tracker.md, "Ablation switches")
    memory: bool = True  # False = κmvlm = κvlm
    gate: Literal["mvlm", "local_only", "always_global"] = "mvlm"  # or a fixed mode every frame
    # reference-compat fixes: None = as `compat` says (docs/tracker.md, "compat")
    exact_pooling: Optional[bool] = None  # area-weighted pooling of the VL similarity
    aligned_memory: Optional[bool] = None  # κmem resampled into each new view
    letterbox_global: Optional[bool] = None  # aspect-preserving whole-frame view
    global_window: Optional[bool] = None  # Hann window in the global pass too
    exact_mapping: Optional[bool] = None  # views cut and boxes mapped by the view's own transform
    hysteresis: int = 0  # empty-S_t frames in a row before going global (0 or 1 = reference)
    # extensions beyond the paper, all off here (docs/tracker.md, "Extensions"; mvlm/track/extensions.py)
    size_damping: float = 1.0  # β < 1: a local step moves w, h only β of the way (log space)
    global_vs_local: bool = False  # a gated global frame also runs the local pass; higher κ answers
    refine_global: bool = False  # every global answer is read again by a local pass around it
    shot_cut_threshold: Optional[float] = None  # thumbnail correlation below it = new shot: global
    target_scale_tiles: bool = False  # global pass tiled with windows of the last box's crop side
    tile_select: Literal["kappa", "score"] = "kappa"  # which tile answers: highest κmvlm or l


# The reference-compat fixes (docs/tracker.md, "compat"): each switch's value under `compat:
# reference` and under `compat: corrected`, used where the TrackerConfig leaves it None. The
# one place that says which fixes `corrected` turns on.
COMPAT_FIXES: dict[str, tuple[bool, bool]] = {
    "exact_pooling": (False, True),
    "aligned_memory": (False, True),
    "letterbox_global": (False, True),
    "global_window": (True, False),
    "exact_mapping": (False, True),
}


def resolve_switches(cfg: TrackerConfig) -> dict[str, Any]:
    """Every reference-compat switch as a concrete value: the explicit setting, else the
    `compat` mode's (COMPAT_FIXES); `hysteresis` as a frame count, 1 unless set above 1 (in
    either mode: it is a parameter of the gate, not a fix that `corrected` turns on)."""
    corrected = cfg.compat == "corrected"
    switches: dict[str, Any] = {}
    for name, (reference, fixed) in COMPAT_FIXES.items():
        value = getattr(cfg, name)
        switches[name] = (fixed if corrected else reference) if value is None else bool(value)
    switches["hysteresis"] = max(1, int(cfg.hysteresis))
    return switches


TRACKER_PRESETS: dict[str, dict[str, Any]] = {
    "tf": {"alpha": 1.0, "tau": 0.1, "omega": 0.4, "lam": 0.4, "psi_out": 0.0, "template_free": True},
    "tf_tnl2k": {"alpha": 0.7, "tau": 0.0, "omega": 0.6, "lam": 0.7, "psi_out": 0.1, "template_free": True},
    "bbox": {"alpha": 0.5, "tau": 0.2, "omega": 0.9, "lam": 0.9, "psi_out": 0.3, "template_free": False},
}


# --------------------------------------------------------------------------------------------
# data, training, evaluation


@dataclass
class SynthConfig:
    """The embedded benchmark (procedurally generated, LaSOT layout)."""

    out: str = "data/synth"
    width: int = 256
    height: int = 192
    frames: int = 120
    seed_train: int = 1
    seed_val: int = 2
    seed_test: int = 3
    sequences_train: int = 160
    sequences_val: int = 8
    sequences_test: int = 30


@dataclass
class SamplingConfig:
    samples_per_epoch: int = 20000
    max_gap: int = 30
    local_share: float = 0.7  # share of local search crops
    global_share: float = 0.3  # share of whole-frame views
    absent_share: float = 0.1  # of the global views, share without the target
    search_factor: float = 4.0
    template_factor: float = 2.0
    center_jitter: float = 3.0
    scale_jitter: float = 0.25
    hflip: float = 0.5
    dataset_ratios: dict[str, float] = field(default_factory=dict)
    letterbox_share: float = 0.5  # of the global views, share letterboxed (rest stretched)
    # box mode: this share of the samples carries `neutral_sentence` instead of the sequence's own,
    # so the match must come from the templates (a network trained with sentences alone ignores them)
    neutral_sentence_share: float = 0.0
    neutral_sentence: str = "the target"
    brightness_jitter: float = 0.2  # brightness factor drawn from U(1 - j, 1 + j) per sample
    # a horizontal flip swaps left/right words in the sentence; None = as `train.compat` says
    # (corrected: swap; reference: the sentence is left as it is, so it may say the wrong side)
    flip_swaps_words: Optional[bool] = None
    grayscale: float = 0.0  # probability that a sample (search and templates together) turns grey
    frame_cache_mb: int = 512  # decoded-frame LRU per data process (0 = no cache)


@dataclass
class LossConfig:
    focal: float = 1.0
    giou: float = 2.0
    l1: float = 5.0
    cm: float = 0.5
    cm_temperature: float = 1.0
    cm_top_k: int = 10
    # energy of a negative j from its margin Δ_j: "signed_square" −c·Δ|Δ| (the reference), or
    # "linear" −c·Δ. The signed square has zero gradient at Δ = 0, where a from-scratch network
    # starts, so its CM term stays at exp(0) = 1 and δcorr never becomes a margin; "linear" does not.
    cm_form: Literal["signed_square", "linear"] = "signed_square"
    align_inference_signal: bool = False
    # box losses on the box decoded at the GT cell (default), at the GT cell and its 8 neighbours
    # ("gt_neighbourhood": whichever of them wins the tracker's argmax decodes a trained box), or
    # at the predicted argmax (reference)
    box_at: Literal["gt_cell", "gt_neighbourhood", "argmax"] = "gt_cell"


@dataclass
class TrainConfig:
    preset: str = "tiny"
    mode: Literal["tf", "bbox"] = "tf"
    datasets: dict[str, str] = field(default_factory=lambda: {"synth": "data/synth/train"})
    # held-out datasets (name -> root) on which the train stage measures per-frame grounding of the
    # final network (`mvlm.train.grounding_accuracy`, right vs shuffled sentence); empty = skip
    validation: dict[str, str] = field(default_factory=dict)
    out_dir: str = "models/tiny_tf"
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    encoder_lr_mult: float = 1.0
    text_lr_mult: float = 1.0
    weight_decay: float = 0.05
    lr_drop_epoch: int = 0  # 0 = no step
    schedule: Literal["step", "cosine"] = "step"  # after warmup: step at lr_drop_epoch, or cosine by steps
    lr_drop_gamma: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 50
    grad_clip: float = 1.0
    # fp32 | bf16 (autocast) | auto: bf16 only where it is native and fast (a GPU with bf16, or a
    # CPU with avx512_bf16 / amx_bf16); the choice and its reason are logged and saved
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    seed: int = 0
    num_workers: int = 0
    max_minutes: float = 0.0  # opt-in wall-clock cap (0 = none): the run stops there, mid-schedule
    timings: str = ""  # per-step timing CSV; "" = <out_dir>.timings.csv beside the output folder
    device: str = "auto"  # auto = cuda:LOCAL_RANK when a GPU is there, else cpu
    threads: int = 0  # torch CPU threads per process (0 = torch's default)
    # > 1: `mvlm train` started outside torchrun launches this many local processes itself
    # (torchrun --standalone, DDP over gloo/nccl; batch_size stays the global batch). On a 2-core
    # CPU two 1-thread processes train ~25% faster than one 2-thread process.
    processes: int = 1
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    model: dict[str, Any] = field(default_factory=dict)  # overrides of the model preset
    # corrected: AdamW groups head / encoder / text (text_proj at lr·text_lr_mult), no weight decay
    # on norms, biases, gammas, pos_embed, cls_token; flips swap left/right words.
    # reference: the released trainer: two groups by name ("encoder" in the name -> lr·encoder_lr_mult,
    # which catches text_encoder.text_proj; "clip"/"bert" names frozen), decay on every parameter,
    # flips keep the sentence. See docs/training.md.
    compat: Literal["corrected", "reference"] = "corrected"
    # what `batch_size` counts: global = the samples of one optimizer step over all processes
    # (split among them); process = each process's batch, so W processes step on W·batch_size
    # samples (the reference: 4 GPUs x 80) and an epoch has samples_per_epoch // (W·batch_size) steps
    batch_per: Literal["global", "process"] = "global"
    # > 0: each process runs its batch in chunks of this many samples and accumulates the gradient
    # (one optimizer step); BatchNorm then sees chunk statistics, so 1 process with micro_batch b
    # steps like b-sample DDP ranks. 0 = the whole per-process batch in one pass
    micro_batch: int = 0
    # dataset name -> split: the benchmark's split name (train) or a file listing sequence names;
    # naming a test split, or a list holding test sequences, is refused (docs/training.md)
    splits: dict[str, str] = field(default_factory=dict)


@dataclass
class DatasetSpec:
    """One dataset to evaluate: loader name, root folder, the modes to run on it."""

    loader: str = "lasot"
    root: str = "data/synth/test"
    split: Optional[str] = None
    modes: list[str] = field(default_factory=lambda: ["tf", "bbox"])
    optional: bool = False  # a missing root is reported and skipped instead of failing the stage
    default_text: Optional[str] = None  # sentence for sequences that have none (e.g. plain OTB)
    profile: Optional[str] = None  # scoring profile; None = evaluate.profile


@dataclass
class EvaluateConfig:
    datasets: dict[str, DatasetSpec] = field(
        default_factory=lambda: {"synth": DatasetSpec()}
    )
    profile: str = "vl_python"
    workers: int = 1
    device: str = "cpu"
    results_dir: str = "results"
    # checkpoints per mode; empty = the train stage's final checkpoint of that mode
    checkpoints: dict[str, str] = field(default_factory=dict)
    # model to build for checkpoints that carry no config (released .pth.tar files), e.g.
    # {"preset": "base", "text": {"weights": "/models/clip_vit_l14.safetensors"}}; empty = from the file
    checkpoint_model: dict[str, Any] = field(default_factory=dict)


@dataclass
class AblateConfig:
    """Confidence-term ablations: each variant is a set of tracker overrides."""

    dataset: str = "synth"
    modes: list[str] = field(default_factory=lambda: ["tf"])
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class ReportConfig:
    out_dir: str = "reports"
    timelines: int = 4  # sequences shown in the gate timeline figure
    profile: str = "vl_python"


# --------------------------------------------------------------------------------------------
# generic typed loading


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{path}: unexpected null")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{path}: expected one of {list(args)}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        return build(tp, value, path)
    if origin in (tuple,):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{path}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, f"{path}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    if origin in (list,):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {type(value).__name__}")
        return [_coerce(v, args[0], f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (dict,):
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__}")
        return {str(k): _coerce(v, args[1], f"{path}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: expected bool, got {type(value).__name__} {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{path}: expected int, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{path}: expected float, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: expected str, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{path}: unsupported type {_type_name(tp)}")


def build(cls: type, values: dict[str, Any], path: str = "") -> Any:
    """Build dataclass `cls` from a mapping; unknown keys and wrong types raise ConfigError."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in values if k not in names]
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"unknown key {where}{unknown[0]} (known: {', '.join(sorted(names))})"
        )
    kwargs = {}
    for name, value in values.items():
        kwargs[name] = _coerce(value, hints[name], f"{path}.{name}" if path else name)
    return cls(**kwargs)


def deep_merge(base: dict, override: dict) -> dict:
    """Recursive dict merge; `override` wins, nested mappings merge."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _from_preset(cls, presets: dict, section: str, values: Optional[dict], preset: Optional[str], default: str):
    """`presets[name]` (name = `preset`, else values["preset"], else `default`) deep-merged with
    `values`, built as `cls`; an unknown name is an error naming the known ones."""
    values = dict(values or {})
    name = preset or values.get("preset", default)
    if name not in presets:
        raise ConfigError(f"{section}.preset: unknown preset {name!r} (known: {', '.join(presets)})")
    merged = deep_merge(presets[name], values)
    merged["preset"] = name
    return build(cls, merged, section)


def model_config(values: dict[str, Any] | None = None, preset: str | None = None) -> ModelConfig:
    """Model config from a preset name plus overrides (``{"preset": "tiny", "encoder": {...}}``)."""
    return _from_preset(ModelConfig, MODEL_PRESETS, "model", values, preset, "base")


def tracker_config(values: dict[str, Any] | None = None, preset: str | None = None) -> TrackerConfig:
    """Tracker config from a preset (`tf`, `tf_tnl2k`, `bbox`) plus overrides."""
    return _from_preset(TrackerConfig, TRACKER_PRESETS, "tracker", values, preset, "tf")


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value`` (value as YAML) into (["a","b","c"], value)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r}: expected key=value")
    key, raw = text.split("=", 1)
    if not key.strip():
        raise ConfigError(f"override {text!r}: empty key")
    return key.strip().split("."), yaml.safe_load(raw) if raw != "" else ""


def apply_overrides(values: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Return a copy of `values` with every ``key.path=value`` override applied."""
    out = copy.deepcopy(values)
    for text in overrides or []:
        keys, value = parse_override(text)
        node = out
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {k} is not a mapping")
        node[keys[-1]] = value
    return out


def load_params(path: str | Path = "params.yaml", overrides: list[str] | None = None) -> dict[str, Any]:
    """Read params.yaml (a mapping of stage sections) and apply overrides."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: params file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level")
    return apply_overrides(data, overrides)


def section(params: dict[str, Any], name: str, cls: type) -> Any:
    """Build the dataclass `cls` from the section `name` of loaded params."""
    values = params.get(name) or {}
    if not isinstance(values, dict):
        raise ConfigError(f"{name}: expected a mapping, got {type(values).__name__}")
    return build(cls, values, name)


def to_dict(cfg: Any) -> dict[str, Any]:
    """Plain-data view of a config dataclass (tuples become lists), for JSON/YAML."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


# --------------------------------------------------------------------------------------------
# the paper pipeline (paper/params.yaml, docs/reproduce.md): released checkpoints on real benchmarks


@dataclass
class PaperDataset:
    """One real benchmark of the paper pipeline. `root` is required: leave a dataset out of
    `paper.datasets` to skip it; a configured root that does not exist is an error."""

    root: str = ""
    loader: str = ""  # "" = the dataset's key (lasot, tnl2k, otb99_lang, mgit)
    split: Optional[str] = "test"
    # tracker preset per mode (mvlm.config.TRACKER_PRESETS); missing modes use the mode's name
    presets: dict[str, str] = field(default_factory=dict)
    profile: Optional[str] = None  # scoring profile; None = paper.profile
    score: bool = True  # False: results only (MGIT: the test GT is hidden, `mvlm submit mgit` packs them)
    default_text: Optional[str] = None


@dataclass
class PaperRun:
    """Where and how the released networks run."""

    device: str = "cuda"
    gpus: int = 1  # GPUs to use (device cuda); workers spread over them: worker i -> cuda:(i mod gpus)
    workers: int = 1  # tracking processes (1 = in the stage's own process)
    max_frames: int = 0  # 0 = every frame; a cap is for smoke runs (the tables then say so)
    max_sequences: int = 0  # 0 = every sequence of the split


@dataclass
class PaperAblate:
    """Confidence-term ablations with the released weights: variants = tracker overrides on top
    of the dataset's preset for `mode` (`compat` inside a variant picks reference / corrected)."""

    dataset: str = "lasot"
    mode: Literal["tf", "bbox"] = "tf"
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class PaperConfig:
    checkpoints: dict[str, str] = field(default_factory=dict)  # mode -> released file; omitted = not run
    text_weights: Optional[str] = None  # CLIP ViT-L/14 weights (OpenAI .pt, open_clip, or HF safetensors)
    datasets: dict[str, PaperDataset] = field(default_factory=dict)
    compats: list[Literal["reference", "corrected"]] = field(default_factory=lambda: ["reference"])
    profile: str = "vl_python"
    run: PaperRun = field(default_factory=PaperRun)
    ablate: PaperAblate = field(default_factory=PaperAblate)
    out: str = "paper"  # inputs/, results/ and reports/ go under this folder
