"""Benchmark loaders: one module per on-disk layout, one registry.

    load_dataset("lasot", "/data/LaSOT", split="test")  -> list[Sequence]

Every loader returns the sequences exactly as the layout stores them (boxes x,y,w,h in
pixels, frames as paths, never decoded). A damaged sequence does not stop the load: it comes
back with `problems` ("error: <file>: ...", "warning: ...", "info: ...") and empty or partial
data; `common.usability_reasons(seq)` says whether it can be used. With
``require_frames=False`` frames may be absent (annotation-only use) and no frame problem is
recorded.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from mvlm.data.benchmarks import lasot, mgit, otb99lang, tnl2k, vasttrack, vot
from mvlm.data.benchmarks.common import usability_reasons
from mvlm.data.sequence import DataError, Sequence

Loader = Callable[..., list[Sequence]]

LOADERS: dict[str, Loader] = {
    "lasot": lasot.load,
    "tnl2k": tnl2k.load,
    "otb99_lang": otb99lang.load,
    "mgit": mgit.load,
    "vasttrack": vasttrack.load,
    "vot": vot.load,
}
ALIASES = {"otb": "otb99_lang", "otb99lang": "otb99_lang", "otb99-lang": "otb99_lang", "videocube": "mgit"}


def canonical_name(name: str) -> str:
    """Registry key of a dataset name or alias; DataError listing the known names otherwise."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in LOADERS:
        known = ", ".join(sorted([*LOADERS, *ALIASES]))
        raise DataError(f"unknown dataset {name!r} (known: {known})")
    return key


def load_dataset(
    name: str,
    root: str | Path,
    split: str | None = None,
    sequences: list[str] | None = None,
    require_frames: bool = True,
    **options,
) -> list[Sequence]:
    """Sequences of benchmark `name` stored under `root`.

    `split` is the benchmark's own split name (LaSOT train/test, TNL2K train/test, OTB99-Lang
    train/test, MGIT train/val/test); `sequences` keeps only those names (unknown names come
    back as sequences with an error). `options` go to the loader (LaSOT ``attributes_dir``,
    MGIT ``version``). A missing `root` or an unknown name raises DataError.
    """
    loader = LOADERS[canonical_name(name)]
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: dataset root not found")
    if not root.is_dir():
        raise DataError(f"{root}: dataset root is not a folder")
    return loader(root, split=split, sequences=sequences, require_frames=require_frames, **options)


__all__ = ["ALIASES", "LOADERS", "canonical_name", "load_dataset", "usability_reasons"]
