"""Ground truth from the evaluation toolkits' annotation packs (no frames needed).

* TNL2K toolkit: ``annos/gt_rect/<seq>.txt`` (x,y,w,h; absent frames 0,0,0,0),
  ``annos/absent/<seq>.txt`` (one 0/1 per line) and ``annos/att/<seq>_attribute.txt``.
  The Python references see no visibility for TNL2K, so ``visible`` stays None and the absent
  flags go to ``meta["absent"]`` (used by the MATLAB profile only).
* LaSOT: per-sequence folders ``<root>/[<class>/]<seq>/groundtruth.txt`` with ``full_occlusion.txt``,
  ``out_of_view.txt`` (visible = both 0) and optionally ``absent.txt``; or the MATLAB toolkit's
  ``annos/<seq>.txt`` + ``annos/absent/<seq>.txt``.
* OTB toolkit: ``<root>/<Name>.txt`` anno files (comma or whitespace, CRLF).

Every reader returns `Sequence` objects with empty frame lists; errors name the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from mvlm.data.benchmarks.common import read_boxes, read_flags
from mvlm.data.sequence import DataError, Sequence
from mvlm.evaluate.results import read_box_files

LASOT_ATTRIBUTES = ("IV", "POC", "DEF", "MB", "CM", "ROT", "BC", "VC", "SV", "FOC", "FM", "OV", "LR", "ARC")


def _find_dir(root: Path, *candidates: str) -> Path:
    for c in candidates:
        if (root / c).is_dir():
            return root / c
    raise DataError(f"{root}: none of {', '.join(candidates)} found (is this the toolkit annotation pack?)")


def read_flag_files(paths: Iterable[Path]) -> list[np.ndarray]:
    """0/1 flag files (one per line, or comma-separated on one line) -> bool arrays; fast path for
    single-character flags, the tolerant reader (clear error) otherwise."""
    out = []
    for path in paths:
        try:
            with open(path, "rb") as fh:
                raw = fh.read()
        except OSError:
            raise DataError(f"{path}: file not found") from None
        digits = raw.translate(None, b" \t\r\n,")
        arr = np.frombuffer(digits, dtype=np.uint8) - ord("0")
        n_tokens = len(raw.replace(b",", b" ").split())
        if n_tokens == len(arr) and (arr <= 1).all():
            out.append(arr.astype(bool))
        else:
            out.append(read_flags(path))
    return out


def _names_in(directory: Path, suffix: str = ".txt") -> list[str]:
    return sorted(p.name[: -len(suffix)] for p in directory.iterdir() if p.name.endswith(suffix))


def load_tnl2k_toolkit(
    root: str | Path, names: Optional[Iterable[str]] = None, with_absent: bool = True, with_attributes: bool = True
) -> list[Sequence]:
    """TNL2K toolkit pack at `root` (containing ``annos/`` or being it) -> sequences (name order).

    `with_absent` / `with_attributes` = False skip those files (the Python profiles need neither).
    """
    root = Path(root)
    annos = root / "annos" if (root / "annos").is_dir() else root
    gt_dir = _find_dir(annos, "gt_rect")
    names = list(names) if names is not None else _names_in(gt_dir)
    gt_files = [os.path.join(gt_dir, f"{n}.txt") for n in names]  # str: cheaper than 700 Path joins
    boxes = read_box_files(gt_files)
    absent_dir = annos / "absent"
    with_absent = with_absent and absent_dir.is_dir()
    absent = read_flag_files([absent_dir / f"{n}.txt" for n in names]) if with_absent else [None] * len(names)
    att_dir = annos / "att"
    have_att = set(os.listdir(att_dir)) if with_attributes and att_dir.is_dir() else set()
    atts = read_flag_files([att_dir / f"{n}_attribute.txt" for n in names if f"{n}_attribute.txt" in have_att])
    att_by_name = dict(zip([n for n in names if f"{n}_attribute.txt" in have_att], atts))
    out = []
    for name, gt_file, b, a in zip(names, gt_files, boxes, absent):
        meta = {"gt_file": gt_file}
        if a is not None:
            meta["absent"] = a
        # the pack gives 17 unnamed flags; their order is the toolkit's, kept as att01..att17
        attrs = {f"att{i + 1:02d}": bool(v) for i, v in enumerate(att_by_name.get(name, ()))}
        out.append(Sequence(name=name, frames=[], boxes=b, visible=None, attributes=attrs, dataset="tnl2k", meta=meta))
    return out


def _lasot_folder(root: Path, name: str) -> Optional[Path]:
    direct = root / name
    if (direct / "groundtruth.txt").is_file():
        return direct
    cls = name.rsplit("-", 1)[0]
    nested = root / cls / name
    if (nested / "groundtruth.txt").is_file():
        return nested
    return None


def _lasot_names(root: Path) -> list[str]:
    found = sorted({p.parent.name for p in root.glob("*/groundtruth.txt")} | {p.parent.name for p in root.glob("*/*/groundtruth.txt")})
    if not found:
        raise DataError(f"{root}: no <seq>/groundtruth.txt or <class>/<seq>/groundtruth.txt found")
    return found


def load_lasot_toolkit(root: str | Path, names: Optional[Iterable[str]] = None) -> list[Sequence]:
    """LaSOT GT from per-sequence folders or the MATLAB toolkit's ``annos/`` pack.

    visible = (full_occlusion == 0) & (out_of_view == 0); meta["absent"] = absent.txt when present.
    """
    root = Path(root)
    if (root / "annos").is_dir() and not any(root.glob("*/groundtruth.txt")):
        return _load_lasot_matlab_pack(root / "annos", names)
    names = list(names) if names is not None else _lasot_names(root)
    out = []
    for name in names:
        folder = _lasot_folder(root, name)
        if folder is None:
            raise DataError(f"{root}: no groundtruth.txt for LaSOT sequence {name!r}")
        boxes = read_box_files([folder / "groundtruth.txt"])[0]
        visible = None
        occ, oov = folder / "full_occlusion.txt", folder / "out_of_view.txt"
        if occ.is_file() and oov.is_file():
            f_occ, f_oov = read_flag_files([occ, oov])
            if len(f_occ) != len(boxes) or len(f_oov) != len(boxes):
                raise DataError(f"{folder}: {len(f_occ)}/{len(f_oov)} visibility flags for {len(boxes)} GT rows")
            visible = ~f_occ & ~f_oov
        meta = {"gt_file": str(folder / "groundtruth.txt")}
        if (folder / "absent.txt").is_file():
            meta["absent"] = read_flag_files([folder / "absent.txt"])[0]
        out.append(Sequence(name=name, frames=[], boxes=boxes, visible=visible, dataset="lasot", meta=meta))
    return out


def _load_lasot_matlab_pack(annos: Path, names) -> list[Sequence]:
    names = list(names) if names is not None else _names_in(annos)
    boxes = read_box_files([annos / f"{n}.txt" for n in names])
    out = []
    for name, b in zip(names, boxes):
        absent_file = annos / "absent" / f"{name}.txt"
        meta = {"gt_file": str(annos / f"{name}.txt")}
        visible = None
        if absent_file.is_file():
            meta["absent"] = read_flag_files([absent_file])[0]
            if len(meta["absent"]) == len(b):
                visible = ~meta["absent"]  # the pack only knows absent = occluded or out of view
        attrs = {}
        att_file = annos / "att" / f"{name}.txt"
        if att_file.is_file():
            flags = read_flags(att_file)
            attrs = {LASOT_ATTRIBUTES[i] if i < len(LASOT_ATTRIBUTES) else f"att{i + 1:02d}": bool(v) for i, v in enumerate(flags)}
        out.append(Sequence(name=name, frames=[], boxes=b, visible=visible, attributes=attrs, dataset="lasot", meta=meta))
    return out


def _otb_file(root: Path, name: str) -> Path:
    for cand in (name, name.replace("-", "_"), name.replace("_", ".")):
        if (root / f"{cand}.txt").is_file():
            return root / f"{cand}.txt"
    lower = {p.stem.lower(): p for p in root.glob("*.txt")}
    for cand in (name, name.replace("-", "_"), name.replace("_", ".")):
        if cand.lower() in lower:
            return lower[cand.lower()]
    raise DataError(f"{root}: no OTB anno file for sequence {name!r}")


def load_otb_toolkit(
    root: str | Path, names: Optional[Iterable[str]] = None, files: Optional[dict[str, str]] = None, dataset: str = "otb"
) -> list[Sequence]:
    """OTB toolkit ``anno`` files ``<root>/<Name>.txt``; `files` maps a sequence name to its file
    name when they differ (e.g. OTB99-Lang ``Skating2-1`` -> ``Skating2_1.txt``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: OTB anno folder not found")
    names = list(names) if names is not None else sorted(p.stem for p in root.glob("*.txt"))
    out = []
    for name in names:
        path = root / files[name] if files and name in files else _otb_file(root, name)
        out.append(Sequence(name=name, frames=[], boxes=read_boxes(path), dataset=dataset, meta={"gt_file": str(path)}))
    return out


TOOLKIT_LOADERS = {
    "tnl2k": load_tnl2k_toolkit,
    "lasot": load_lasot_toolkit,
    "otb": load_otb_toolkit,
    "otb99_lang": lambda root, names=None: load_otb_toolkit(root, names, dataset="otb99_lang"),
}


def load_groundtruth(dataset: str, root: str | Path, layout: str = "toolkit", names: Optional[Iterable[str]] = None) -> list[Sequence]:
    """GT sequences of `dataset` from a toolkit pack (`layout="toolkit"`) or a dataset layout
    (`layout="dataset"`, through `mvlm.data.benchmarks.load_dataset`)."""
    key = dataset.lower()
    if not Path(root).exists():
        raise DataError(f"{root}: ground-truth root not found")
    if layout == "toolkit":
        if key not in TOOLKIT_LOADERS:
            raise DataError(f"no toolkit-pack reader for dataset {dataset!r} (have {', '.join(TOOLKIT_LOADERS)})")
        return TOOLKIT_LOADERS[key](root, names)
    if layout != "dataset":
        raise ValueError(f"unknown GT layout {layout!r} (toolkit or dataset)")
    try:
        from mvlm.data.benchmarks import load_dataset
    except ImportError as exc:
        raise DataError(f"dataset loaders are not available in this checkout ({exc})") from exc
    seqs = load_dataset(dataset, root, require_frames=False)
    if names is not None:
        wanted = list(names)
        by_name = {s.name: s for s in seqs}
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise DataError(f"{root}: sequences not in the {dataset} layout: {missing[:5]}")
        seqs = [by_name[n] for n in wanted]
    return seqs
