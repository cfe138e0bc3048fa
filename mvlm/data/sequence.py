"""The `Sequence`: one annotated video, frames as paths (decoded lazily).

Boxes are ``x, y, w, h`` in pixels, (x, y) the top-left corner, float64 array of shape (N, 4),
one row per annotated frame. `visible` is a bool array (N,) or None when the benchmark has no
visibility flags (TNL2K, OTB, MGIT): the scoring profiles treat the two cases differently, so
"no flags" is never silently turned into "all visible".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np


class DataError(ValueError):
    """A benchmark file is missing, unreadable or inconsistent. The message names the file."""


@dataclass
class Sequence:
    name: str
    frames: list[Path]  # image paths in display order; may be empty for annotation-only use
    boxes: np.ndarray  # (N, 4) float64 x, y, w, h in pixels
    language: str = ""
    visible: Optional[np.ndarray] = None  # (N,) bool, None = benchmark has no flags
    attributes: dict[str, bool] = field(default_factory=dict)
    dataset: str = ""
    problems: list[str] = field(default_factory=list)  # non-fatal issues found while loading
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if self.visible is not None:
            self.visible = np.asarray(self.visible, dtype=bool).reshape(-1)

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def init_box(self) -> np.ndarray:
        return self.boxes[0]

    def valid_mask(self) -> np.ndarray:
        """Frames whose GT box has positive size (and is visible where flags exist)."""
        ok = np.isfinite(self.boxes).all(axis=1) & (self.boxes[:, 2] > 0) & (self.boxes[:, 3] > 0)
        if self.visible is not None and len(self.visible) == len(ok):
            ok &= self.visible
        return ok

    def read_frame(self, index: int) -> np.ndarray:
        """Frame `index` as an RGB uint8 array (H, W, 3); clear error naming the file."""
        from mvlm.data.image import read_rgb

        if not 0 <= index < len(self.frames):
            raise DataError(f"{self.name}: frame {index} out of range (0..{len(self.frames) - 1})")
        return read_rgb(self.frames[index])


def fill_missing_language(sequences: list[Sequence], text: Optional[str]) -> list[Sequence]:
    """Give every sequence without a sentence `text` (plain OTB and VOT carry none); a sequence
    that has its own sentence keeps it. `None` or blank `text` changes nothing."""
    from mvlm.data.benchmarks.common import INFO, is_sentence_problem, problem

    if text and text.strip():
        for seq in sequences:
            if not seq.language.strip():
                seq.language = text
                # the missing sentence no longer makes the sequence unusable
                seq.problems = [p for p in seq.problems if not is_sentence_problem(p)]
                seq.problems.append(problem(INFO, seq.name, f"no sentence of its own: given {text!r}"))
    return sequences
