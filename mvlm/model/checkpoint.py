"""Checkpoint I/O that never runs code from a file (docs/paper-notes.md §1.6).

Reading
- safetensors: tensors + string metadata (what this suite writes).
- torch zip archives (`torch.save`, e.g. the released `MVLM_TF.pth.tar`): `data.pkl` is read by
  `SafeUnpickler`, which admits only tensor rebuild functions, storage types and plain
  containers. Every other class (the authors' `AverageMeter`, `Settings`, ...) becomes an inert
  `Opaque` record: nothing is imported, nothing is called.
- TorchScript archives (OpenAI's CLIP `ViT-L-14.pt`): `data.pkl` read the same way; the module
  records become a flat state dict (`torch.jit.load` is never called: it would run the code).
- legacy (pre-zip) torch files: `torch.load(weights_only=True)`.

Writing: safetensors with metadata {preset, model_config (JSON), mode, tracker_preset}; frozen
text-tower weights are never written (they are not in the model's state_dict).
"""

from __future__ import annotations

import collections
import dataclasses
import io
import json
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mvlm.atomic import write_bytes
from mvlm.config import ModelConfig, model_config, to_dict
from mvlm.model.metadata import CheckpointError, config_from_metadata, describe_model, is_safetensors

FORMAT_VERSION = "1"
STATE_KEYS = ("net", "state_dict", "model", "module")  # where training dicts keep the weights
# torch.save stores archive members uncompressed: a member that inflates far past the file's
# own size is a zip bomb, refused before anything is inflated
INFLATE_RATIO = 16
INFLATE_FLOOR = 64 * 1024 * 1024


# --------------------------------------------------------------------------------------------
# restricted unpickling of torch zip archives


class Opaque:
    """Inert stand-in for a pickled object of a class we refuse to import."""

    qualname = "?"

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.__dict__.update(args=args, kwargs=kwargs, state=None, items={}, elements=[])
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state

    def __setitem__(self, key, value):  # SETITEMS on dict subclasses
        self.items[key] = value

    def append(self, value):  # APPENDS on list subclasses
        self.elements.append(value)

    def extend(self, values):
        self.elements.extend(values)

    def __repr__(self) -> str:
        return f"<opaque {self.qualname}>"


@dataclasses.dataclass(frozen=True)
class _StorageType:
    dtype: torch.dtype


_STORAGE_DTYPES = {
    "FloatStorage": torch.float32, "DoubleStorage": torch.float64, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "UntypedStorage": torch.uint8,
}


def _rebuild_tensor(storage, offset, size, stride, *_ignored) -> torch.Tensor:
    if not isinstance(storage, torch.Tensor):
        raise pickle.UnpicklingError("tensor record without a storage")
    return torch.as_strided(storage, tuple(size), tuple(stride), int(offset))


def _rebuild_parameter(data, *_ignored) -> torch.Tensor:
    return data


def _rebuild_from_type(func, _new_type, args, _state) -> Any:
    return func(*args)


_ALLOWED = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch", "Size"): tuple,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
    # TorchScript archives tag typed lists/dicts; the values are plain data
    ("torch.jit._pickle", "restore_type_tag"): lambda value, _tag: value,
    ("torch.jit._pickle", "build_intlist"): list,
    ("torch.jit._pickle", "build_doublelist"): list,
    ("torch.jit._pickle", "build_boollist"): list,
    ("torch.jit._pickle", "build_tensorlist"): list,
}


class SafeUnpickler(pickle.Unpickler):
    """Unpickler for a torch zip archive's data.pkl: storages come from the archive's records,
    only allow-listed callables exist, every other global becomes an `Opaque` subclass."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, folder: str = "data", lazy: bool = False):
        super().__init__(file)
        self.archive = archive
        self.prefix = prefix
        self.folder = folder  # data.pkl's storages live in data/, constants.pkl's in constants/
        self.lazy = lazy  # storages as "meta" tensors: shapes and dtypes, no bytes read
        self.storages: dict[str, torch.Tensor] = {}
        self.opaque_classes: set[str] = set()

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        qualname = f"{module}.{name}"
        self.opaque_classes.add(qualname)
        return type(name, (Opaque,), {"qualname": qualname})

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent record {pid!r:.80}")
        storage_type, key, _location, numel = pid[1:5]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        key = str(key)
        if key not in self.storages and self.lazy:
            self.archive.getinfo(f"{self.prefix}/data/{key}")  # KeyError when the record is missing
            self.storages[key] = torch.empty(int(numel), dtype=storage_type.dtype, device="meta")
        if key not in self.storages:
            data = self.archive.read(f"{self.prefix}/{self.folder}/{key}")
            dtype = storage_type.dtype
            if not data:
                self.storages[key] = torch.empty(0, dtype=dtype)
            else:
                self.storages[key] = torch.frombuffer(bytearray(data), dtype=dtype)
        return self.storages[key]


def _check_inflation(path: Path, members: list[zipfile.ZipInfo]) -> None:
    """Refuse when `members` would inflate past max(INFLATE_RATIO x file size, INFLATE_FLOOR)."""
    total = sum(m.file_size for m in members)
    limit = max(INFLATE_RATIO * path.stat().st_size, INFLATE_FLOOR)
    if total > limit:
        raise CheckpointError(f"{path}: archive members would inflate to {total:,} bytes from a "
                              f"{path.stat().st_size:,}-byte file (limit {limit:,}): refusing a "
                              "compressed or forged archive")


def _module_tensors(obj: Any, prefix: str = "", out: dict | None = None, seen: set | None = None) -> dict:
    """Flatten a TorchScript module tree (inert records whose state is the attribute dict) into
    a state dict: tensors under their dotted attribute path, other attributes skipped."""
    out = {} if out is None else out
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return out
    seen.add(id(obj))
    state = obj.state if isinstance(obj, Opaque) else obj
    if not isinstance(state, dict):
        return out
    for name, value in state.items():
        if isinstance(value, torch.Tensor):
            out[f"{prefix}{name}"] = value
        elif isinstance(value, (Opaque, dict)):
            _module_tensors(value, f"{prefix}{name}.", out, seen)
    return out


def _read_torch_zip(path: Path, lazy: bool = False) -> tuple[Any, set[str], str]:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pkls = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if not pkls:
            raise CheckpointError(f"{path}: zip file without data.pkl: not a torch checkpoint")
        prefix = pkls[0].split("/")[0]
        order = f"{prefix}/byteorder"
        if order in names and archive.read(order).decode().strip() != "little":
            raise CheckpointError(f"{path}: big-endian torch archives are not supported")
        infos = archive.infolist()
        _check_inflation(path, [i for i in infos if i.filename == pkls[0]] if lazy else infos)
        unpickler = SafeUnpickler(io.BytesIO(archive.read(pkls[0])), archive, prefix, lazy=lazy)
        obj = unpickler.load()
        if f"{prefix}/constants.pkl" not in names and not any(n.startswith(f"{prefix}/code/") for n in names):
            return obj, unpickler.opaque_classes, "torch-zip"
        # TorchScript (e.g. OpenAI's ViT-L-14.pt): read as data only, never torch.jit.load (it
        # would run the archive's code); the module tree becomes a flat state dict
        state = _module_tensors(obj)
        if not state:
            raise CheckpointError(f"{path}: TorchScript archive without tensors")
        return state, unpickler.opaque_classes, "torchscript"


_SAFETENSORS_DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
                       "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
                       "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool}


def _meta_tensor(shape: list[int], dtype: str) -> torch.Tensor:
    return torch.empty(shape, dtype=_SAFETENSORS_DTYPES.get(dtype, torch.uint8), device="meta")


def _reason(exc: Exception) -> str:
    """One line about why a reader failed, without torch's advice to retry with
    ``weights_only=False`` (that would run code from the file)."""
    text = str(exc)
    if "weights_only" in text:  # torch's message: the real cause follows "WeightsUnpickler error:"
        cause = text.split("WeightsUnpickler error:", 1)[-1] if "WeightsUnpickler error:" in text else ""
        text = cause.split("Check the documentation", 1)[0].strip() or "not a torch pickle"
    line = " ".join(text.split())
    line = line.split(" This is an internal")[0]  # miniz's paragraph of advice
    return f"{type(exc).__name__}: {line[:200]}"


def read_checkpoint(path: str | Path, lazy: bool = False) -> tuple[Any, dict]:
    """Load a file's content without executing anything. Returns (object, info) where info has
    `format` (safetensors | torch-zip | torchscript | torch-legacy), `metadata` (safetensors) and
    `opaque_classes` (classes that were replaced by inert records).

    `lazy`: tensors come back on the "meta" device (shape and dtype only; safetensors headers,
    torch-zip pickle records), so inspecting a file never inflates its weights."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        if is_safetensors(path):
            from safetensors import safe_open

            with safe_open(str(path), framework="pt") as fh:
                metadata = fh.metadata() or {}
                if lazy:
                    tensors = {k: _meta_tensor(fh.get_slice(k).get_shape(), fh.get_slice(k).get_dtype())
                               for k in fh.keys()}
                else:
                    tensors = {k: fh.get_tensor(k) for k in fh.keys()}
            return tensors, {"format": "safetensors", "metadata": metadata, "opaque_classes": []}
        if zipfile.is_zipfile(path):
            obj, opaque, kind = _read_torch_zip(path, lazy=lazy)
            return obj, {"format": kind, "metadata": {}, "opaque_classes": sorted(opaque)}
        obj = torch.load(path, map_location="cpu", weights_only=True)
        return obj, {"format": "torch-legacy", "metadata": {}, "opaque_classes": []}
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - every reader failure becomes one clear message
        raise CheckpointError(
            f"{path}: cannot read checkpoint (truncated or corrupt file, or not a checkpoint): {_reason(exc)}"
        ) from exc


def extract_state_dict(obj: Any, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensors of a training dict (`net`/`state_dict`/`model`/`module`) or a bare state dict,
    with a DDP `module.` prefix removed."""
    while isinstance(obj, dict) and not _all_tensors(obj):
        key = next((k for k in STATE_KEYS if isinstance(obj.get(k), dict)), None)
        if key is None:
            bad = [f"{k}: {type(v).__name__}" for k, v in obj.items() if not isinstance(v, torch.Tensor)]
            raise CheckpointError(f"{source}: no state dict found (looked for {', '.join(STATE_KEYS)}); "
                                  f"non-tensor entries: {', '.join(bad[:6])}")
        obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError(f"{source}: expected a dict of tensors, got {type(obj).__name__}")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def _all_tensors(d: dict) -> bool:
    return bool(d) and all(isinstance(v, torch.Tensor) for v in d.values())


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """State dict of any supported file (see `read_checkpoint`)."""
    obj, _ = read_checkpoint(path)
    return extract_state_dict(obj, str(path))


# --------------------------------------------------------------------------------------------
# key checks


@dataclasses.dataclass
class KeyReport:
    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]  # "key: file (..) vs model (..)"

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)

    def describe(self, limit: int = 10) -> str:
        parts = []
        for name, keys in (("missing", self.missing), ("unexpected", self.unexpected),
                           ("mis-shaped", self.mismatched)):
            if keys:
                more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
                parts.append(f"{len(keys)} {name}: {', '.join(keys[:limit])}{more}")
        return "; ".join(parts) or "all keys match"


def compare_keys(expected: dict[str, tuple], state: dict[str, torch.Tensor]) -> KeyReport:
    """Compare a state dict with the model's expected {key: shape}."""
    return KeyReport(
        missing=[k for k in expected if k not in state],
        unexpected=[k for k in state if k not in expected],
        mismatched=[f"{k}: file {tuple(v.shape)} vs model {tuple(expected[k])}"
                    for k, v in state.items() if k in expected and tuple(v.shape) != tuple(expected[k])],
    )


def expected_shapes(model: nn.Module) -> dict[str, tuple]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def load_state_dict_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load with every key and shape checked first; the error lists all that is wrong."""
    report = compare_keys(expected_shapes(model), state)
    if not report.ok:
        raise CheckpointError(f"{source}: does not fit the model: {report.describe()}")
    model.load_state_dict(state, strict=True)


# --------------------------------------------------------------------------------------------
# 3-channel Fast-iTPN pretrained file -> 6-channel encoder body


def expand_patch_embed(weight: torch.Tensor, in_chans: int, rule: str, init: torch.Tensor) -> torch.Tensor:
    """(C, 3, k, k) RGB kernel -> (C, in_chans, k, k).

    halfcopy: W/2 in both halves (duplicated RGB input gives the pretrained response W·x);
    copy: W in both halves; random: W in the first half, `init` (the fresh kernel) elsewhere.
    """
    reps = in_chans // weight.shape[1]
    if weight.shape[1] == in_chans:
        return weight
    if in_chans % weight.shape[1]:
        raise CheckpointError(f"patch embed has {weight.shape[1]} input channels, cannot fill {in_chans}")
    if rule == "halfcopy":
        return torch.cat([weight / reps] * reps, dim=1)
    if rule == "copy":
        return torch.cat([weight] * reps, dim=1)
    if rule == "random":
        out = init.clone()
        out[:, : weight.shape[1]] = weight
        return out
    raise CheckpointError(f"unknown patch-embed rule {rule!r} (halfcopy, copy, random)")


def resize_pos_grid(grid: torch.Tensor, side: int) -> torch.Tensor:
    """(g, g, D) grid -> (side*side, D): top-left side×side crop when smaller, bicubic
    interpolation (align_corners=True) when larger."""
    g = grid.shape[0]
    if side <= g:
        return grid[:side, :side].reshape(side * side, -1)
    img = grid.permute(2, 0, 1).unsqueeze(0).float()  # (1, D, g, g)
    img = F.interpolate(img, size=(side, side), mode="bicubic", align_corners=True)
    return img[0].permute(1, 2, 0).reshape(side * side, -1).to(grid.dtype)


def convert_pos_embed(pos: torch.Tensor, search_side: int, template_side: int) -> torch.Tensor:
    """Pretrained square pos table (1, g², D) (a leading CLS row is dropped) -> (1, Ns+Nt, D)."""
    n = pos.shape[1]
    g = int(round(n ** 0.5))
    if g * g != n:
        g = int(round((n - 1) ** 0.5))
        if g * g != n - 1:
            raise CheckpointError(f"pos_embed with {n} rows is not a square grid")
        pos = pos[:, 1:]
    grid = pos[0].reshape(g, g, -1)
    return torch.cat([resize_pos_grid(grid, search_side), resize_pos_grid(grid, template_side)]).unsqueeze(0)


def convert_pretrained_backbone(state: dict[str, torch.Tensor], body: nn.Module, rule: str) -> dict[str, torch.Tensor]:
    """Fit a Fast-iTPN pretrained state dict (3 channels, square 2-D pos table) to `body`."""
    for prefix in ("encoder.body.", "backbone.", "body."):
        if any(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
            break
    state = dict(state)
    own = body.state_dict()
    key = "patch_embed.proj.weight"
    if key in state:
        state[key] = expand_patch_embed(state[key], own[key].shape[1], rule, own[key])
    if "pos_embed" in state and state["pos_embed"].shape != own["pos_embed"].shape:
        cfg = body.cfg
        state["pos_embed"] = convert_pos_embed(state["pos_embed"], cfg.search_size // 16, cfg.template_size // 16)
    return state


def load_pretrained_backbone(model: nn.Module, path: str | Path, rule: str = "halfcopy") -> KeyReport:
    """Load a 3-channel Fast-iTPN file into `model.encoder.body` (module/model nesting allowed).
    Extra keys of the pretraining (heads, FPN) are ignored; mis-shaped keys are an error."""
    body = model.encoder.body
    state = convert_pretrained_backbone(read_state_dict(path), body, rule)
    report = compare_keys(expected_shapes(body), state)
    if report.mismatched:
        raise CheckpointError(f"{path}: pretrained backbone does not fit the encoder: {report.describe()}")
    if len(report.missing) == len(expected_shapes(body)):
        raise CheckpointError(f"{path}: no Fast-iTPN encoder keys found ({report.describe(5)})")
    body.load_state_dict({k: v for k, v in state.items() if k not in report.unexpected}, strict=False)
    return report


# --------------------------------------------------------------------------------------------
# suite checkpoints


def save_checkpoint(model: nn.Module, path: str | Path, mode: str = "tf",
                    tracker_preset: str | None = None, extra: dict[str, str] | None = None) -> Path:
    """safetensors file with the model's state dict (no frozen text tower) and metadata."""
    if mode not in ("tf", "bbox"):
        raise CheckpointError(f"mode must be 'tf' or 'bbox', got {mode!r}")
    cfg: ModelConfig = model.cfg
    metadata = {
        "format": "mvlm",
        "format_version": FORMAT_VERSION,
        "preset": cfg.preset,
        "model_config": json.dumps(to_dict(cfg), sort_keys=True),
        "mode": mode,
        "tracker_preset": tracker_preset or mode,
        **{str(k): str(v) for k, v in (extra or {}).items()},
    }
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    return write_bytes(path, safetensors_bytes(tensors, metadata))


def safetensors_bytes(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """A safetensors file whose bytes depend only on its content. safetensors writes the
    metadata from a hash map, in an order that changes from process to process, so the same
    weights would hash differently; the header is rewritten with the metadata keys sorted (the
    tensor entries and data are already in a fixed order; data offsets are relative to the
    header's end, so its length may change)."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    ordered = {"__metadata__": dict(sorted(header.pop("__metadata__", {}).items()))} if metadata else {}
    ordered.update(header)
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header with spaces to 8-byte alignment
    return struct.pack("<Q", len(text)) + text + data[8 + n:]


def load_model(path: str | Path, preset: str | None = None, overrides: dict | None = None,
               text_weights: str | None = None, device: str | torch.device = "cpu", mode: str | None = None,
               random_init: bool = False, text_half: bool = False):
    """The one model loader: build the network a checkpoint describes, load it strictly ->
    (MVLMNet, meta). Used by track, evaluate, the pipeline, demo, serve and the widget (through
    `build_tracker`).

    Suite safetensors carry their model config and mode; other files (the released
    `MVLM_TF.pth.tar` / `MVLM_BBOX.pth.tar`) need `preset` and `mode` ('tf' | 'bbox'): both
    have the same keys, so a missing mode is an error, never a guess. `overrides` is a model
    section (model-config overrides plus `preset`, `mode`, `random_init`). A frozen CLIP tower
    is not in checkpoints: `text_weights` (or text.weights) must name its file, or `random_init`
    must allow a random tower (meta then says `random_init`). `text_half` runs the CLIP tower
    in fp16 (what the reference's clip.load does on CUDA). Every file problem is a
    CheckpointError / TextError naming the file, raised before weights are built.
    """
    from mvlm.model.net import MVLMNet

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    section = dict(overrides or {})
    if text_weights is not None:
        section["text"] = {**section.get("text", {}), "weights": str(text_weights)}
    if not is_safetensors(path):  # a torch file: no metadata, check the stated model first
        describe_model({}, "torch", str(path), preset, section, mode, random_init)
    obj, info = read_checkpoint(path)
    cfg, meta = describe_model(info["metadata"], info["format"], str(path), preset, section, mode, random_init)
    state = extract_state_dict(obj, str(path))
    with torch.device("meta"):  # check keys before paying for real weights (and CLIP)
        shapes = expected_shapes(MVLMNet(dataclasses.replace(cfg, text=dataclasses.replace(cfg.text, weights=None))))
    report = compare_keys(shapes, state)
    if not report.ok:
        raise CheckpointError(f"{path}: does not fit the model (preset {cfg.preset}, mode {meta['mode']}): "
                              f"{report.describe()}")
    model = MVLMNet(cfg)
    load_state_dict_strict(model, state, str(path))
    model = model.to(device).eval()
    if text_half and model.text_encoder.clip is not None:
        model.text_encoder.set_half(True)
        meta["text_dtype"] = "float16"
    return model, meta


def inspect_checkpoint(path: str | Path, preset: str | None = None, overrides: dict | None = None) -> dict:
    """What a file holds (format, top-level entries, tensor keys/shapes) and, with a preset or
    suite metadata, how it matches that model (missing / unexpected / mis-shaped keys)."""
    from mvlm.model.net import MVLMNet

    obj, info = read_checkpoint(path, lazy=True)  # shapes and dtypes only: no weights inflated
    state = extract_state_dict(obj, str(path))
    result: dict[str, Any] = {
        "path": str(path),
        "format": info["format"],
        "metadata": info["metadata"],
        "top_level": sorted(map(str, obj)) if isinstance(obj, dict) and obj is not state else [],
        "opaque_classes": info["opaque_classes"],
        "num_tensors": len(state),
        "num_elements": int(sum(v.numel() for v in state.values())),
        "keys": {k: [list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in state.items()},
    }
    cfg = None
    if preset is not None:
        cfg = model_config(overrides or {}, preset=preset)
    elif "model_config" in info["metadata"]:
        cfg = config_from_metadata(info["metadata"], str(path))
    if cfg is not None:
        cfg = dataclasses.replace(cfg, pretrained_backbone=None, text=dataclasses.replace(cfg.text, weights=None))
        with torch.device("meta"):
            model = MVLMNet(cfg)
        report = compare_keys(expected_shapes(model), state)
        result["against"] = cfg.preset
        result["missing"], result["unexpected"], result["mismatched"] = (
            report.missing, report.unexpected, report.mismatched)
        result["loads_strictly"] = report.ok
    return result
