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
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

import numpy as np

from mvlm.data.benchmarks.common import errors, is_sentence_problem, read_boxes, read_flags
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


def _read_gt_files(names: list[str], paths: list, failures: Optional[dict[str, str]]) -> list[Optional[np.ndarray]]:
    """Boxes of each GT file, all parsed by one `read_box_files` call. With `failures` a file that
    cannot be read puts its reason under its sequence name (None in its place) instead of
    stopping every sequence."""
    try:
        return list(read_box_files(paths))
    except DataError:
        if failures is None:
            raise
    out: list[Optional[np.ndarray]] = []
    for name, path in zip(names, paths):  # one by one, only after a failure: find every bad file
        try:
            out.append(read_box_files([path])[0])
        except DataError as exc:
            failures[name] = str(exc)
            out.append(None)
    return out


def _read_flags_each(names: list[str], paths: list[Path], failures: Optional[dict[str, str]]) -> list:
    """`read_flag_files`, with per-sequence failures as in `_read_gt_files`."""
    try:
        return read_flag_files(paths)
    except DataError:
        if failures is None:
            raise
    out = []
    for name, path in zip(names, paths):
        try:
            out.append(read_flag_files([path])[0])
        except DataError as exc:
            failures[name] = str(exc)
            out.append(None)
    return out


def _names_in(directory: Path, suffix: str = ".txt") -> list[str]:
    return sorted(p.name[: -len(suffix)] for p in directory.iterdir() if p.name.endswith(suffix))


def load_tnl2k_toolkit(
    root: str | Path, names: Optional[Iterable[str]] = None, with_absent: bool = True, with_attributes: bool = True,
    failures: Optional[dict[str, str]] = None,
) -> list[Sequence]:
    """TNL2K toolkit pack at `root` (containing ``annos/`` or being it) -> sequences (name order).

    `with_absent` / `with_attributes` = False skip those files (the Python profiles need neither).
    `failures`: when given, a sequence whose files cannot be read is left out and its reason
    stored there (name -> message naming the file); otherwise the first bad file raises.
    """
    root = Path(root)
    annos = root / "annos" if (root / "annos").is_dir() else root
    gt_dir = _find_dir(annos, "gt_rect")
    names = list(names) if names is not None else _names_in(gt_dir)
    gt_files = [os.path.join(gt_dir, f"{n}.txt") for n in names]  # str: cheaper than 700 Path joins
    boxes = _read_gt_files(names, gt_files, failures)
    if failures is not None and any(b is None for b in boxes):
        names, gt_files, boxes = map(list, zip(*[(n, f, b) for n, f, b in zip(names, gt_files, boxes) if b is not None])
                                      or ([], [], []))
    absent_dir = annos / "absent"
    with_absent = with_absent and absent_dir.is_dir()
    absent = _read_flags_each(names, [absent_dir / f"{n}.txt" for n in names], failures) if with_absent else [None] * len(names)
    att_dir = annos / "att"
    have_att = set(os.listdir(att_dir)) if with_attributes and att_dir.is_dir() else set()
    atts = read_flag_files([att_dir / f"{n}_attribute.txt" for n in names if f"{n}_attribute.txt" in have_att])
    att_by_name = dict(zip([n for n in names if f"{n}_attribute.txt" in have_att], atts))
    out = []
    for name, gt_file, b, a in zip(names, gt_files, boxes, absent):
        if failures is not None and name in failures:
            continue
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


# what marks a LaSOT sequence folder, so that one whose groundtruth.txt is missing is still named
_LASOT_MARKS = ("groundtruth.txt", "img", "nlp.txt", "full_occlusion.txt", "out_of_view.txt")


def _lasot_names(root: Path) -> list[str]:
    found = sorted({p.parent.name for mark in _LASOT_MARKS for pattern in (f"*/{mark}", f"*/*/{mark}")
                    for p in root.glob(pattern)})
    if not found:
        raise DataError(f"{root}: no <seq>/groundtruth.txt or <class>/<seq>/groundtruth.txt found")
    return found


def load_lasot_toolkit(root: str | Path, names: Optional[Iterable[str]] = None,
                       failures: Optional[dict[str, str]] = None) -> list[Sequence]:
    """LaSOT GT from per-sequence folders or the MATLAB toolkit's ``annos/`` pack.

    visible = (full_occlusion == 0) & (out_of_view == 0); meta["absent"] = absent.txt when present.
    `failures` as in `load_tnl2k_toolkit`.
    """
    root = Path(root)
    if (root / "annos").is_dir() and not any(root.glob("*/groundtruth.txt")):
        return _load_lasot_matlab_pack(root / "annos", names, failures)
    names = list(names) if names is not None else _lasot_names(root)
    out = []
    for name in names:
        try:
            out.append(_lasot_sequence(root, name))
        except DataError as exc:
            if failures is None:
                raise
            failures[name] = str(exc)
    return out


def _lasot_sequence(root: Path, name: str) -> Sequence:
    """One LaSOT sequence folder's GT; DataError naming the file when it cannot be read."""
    folder = _lasot_folder(root, name)
    if folder is None:
        where = next((d for d in (root / name, root / name.rsplit("-", 1)[0] / name) if d.is_dir()), root / name)
        raise DataError(f"{where / 'groundtruth.txt'}: file not found (LaSOT sequence {name!r})")
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
    return Sequence(name=name, frames=[], boxes=boxes, visible=visible, dataset="lasot", meta=meta)


def _load_lasot_matlab_pack(annos: Path, names, failures: Optional[dict[str, str]] = None) -> list[Sequence]:
    names = list(names) if names is not None else _names_in(annos)
    boxes = _read_gt_files(names, [annos / f"{n}.txt" for n in names], failures)
    out = []
    for name, b in zip(names, boxes):
        if b is None:
            continue
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
    root: str | Path, names: Optional[Iterable[str]] = None, files: Optional[dict[str, str]] = None, dataset: str = "otb",
    failures: Optional[dict[str, str]] = None,
) -> list[Sequence]:
    """OTB toolkit ``anno`` files ``<root>/<Name>.txt``; `files` maps a sequence name to its file
    name when they differ (e.g. OTB99-Lang ``Skating2-1`` -> ``Skating2_1.txt``)."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: OTB anno folder not found")
    names = list(names) if names is not None else sorted(p.stem for p in root.glob("*.txt"))
    out = []
    for name in names:
        try:
            path = root / files[name] if files and name in files else _otb_file(root, name)
            out.append(Sequence(name=name, frames=[], boxes=read_boxes(path), dataset=dataset, meta={"gt_file": str(path)}))
        except DataError as exc:
            if failures is None:
                raise
            failures[name] = str(exc)
    return out


TOOLKIT_LOADERS = {
    "tnl2k": load_tnl2k_toolkit,
    "lasot": load_lasot_toolkit,
    "otb": load_otb_toolkit,
    "otb99_lang": lambda root, names=None, failures=None: load_otb_toolkit(root, names, dataset="otb99_lang", failures=failures),
}


LAYOUTS = ("toolkit", "dataset")


@dataclass
class GroundTruth:
    """The GT a scoring run uses: the sequences that could be read, and every other sequence the
    root or the name list named, with why it could not be read (a message naming the file)."""

    sequences: list[Sequence]
    failures: dict[str, str]
    layout: str

    @property
    def named(self) -> int:
        return len(self.sequences) + len(self.failures)


def _gt_reasons(seq: Sequence) -> list[str]:
    """Why the GT of a dataset-layout sequence cannot be scored ([] = it can)."""
    reasons = [p for p in errors(seq.problems) if not is_sentence_problem(p)]  # scoring needs no sentence
    if len(seq.boxes) == 0 and not reasons:
        reasons.append("no GT boxes")
    return reasons


def _read_layout(dataset: str, root: Path, layout: str, names: Optional[list[str]]) -> GroundTruth:
    failures: dict[str, str] = {}
    if layout == "toolkit":
        key = dataset.lower()
        if key not in TOOLKIT_LOADERS:
            raise DataError(f"no toolkit-pack reader for dataset {dataset!r} (have {', '.join(TOOLKIT_LOADERS)})")
        seqs = TOOLKIT_LOADERS[key](root, names, failures=failures)
        return GroundTruth(seqs, failures, layout)
    from mvlm.data.benchmarks import load_dataset

    seqs = []
    for seq in load_dataset(dataset, root, sequences=names, require_frames=False):
        reasons = _gt_reasons(seq)
        if reasons:
            failures[seq.name] = "; ".join(reasons)
        else:
            seqs.append(seq)
    return GroundTruth(seqs, failures, layout)


def read_groundtruth(dataset: str, root: str | Path, layout: str = "auto",
                     names: Optional[Iterable[str]] = None) -> GroundTruth:
    """GT of `dataset` from a toolkit pack (`layout="toolkit"`), a dataset layout (`"dataset"`,
    through `mvlm.data.benchmarks.load_dataset`) or the first of the two that names a sequence
    (`"auto"`). A sequence whose GT cannot be read is listed in `failures`, never dropped; a
    layout that names no sequence at all is a DataError naming each layout tried."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: ground-truth root not found")
    if layout not in (*LAYOUTS, "auto"):
        raise ValueError(f"unknown GT layout {layout!r} (toolkit, dataset or auto)")
    names = list(names) if names is not None else None
    tried = []
    for candidate in LAYOUTS if layout == "auto" else (layout,):
        try:
            found = _read_layout(dataset, root, candidate, names)
        except DataError as exc:  # the root is not this layout
            tried.append(f"{candidate} layout: {exc}")
            continue
        if found.named:
            return found
        tried.append(f"{candidate} layout: no sequence found")
    raise DataError(f"{root}: no {dataset} sequence found; tried " + "; ".join(tried))
