"""Atomic file writes: the data goes to a temporary file beside the target, then `os.replace`
moves it into place, so a reader (or a killed writer) never sees half a file."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_with(path: str | Path, writer: Callable[[Path], None]) -> Path:
    """Call `writer(tmp)` to fill a temporary file, then move it onto `path`; returns `path`.
    The temporary name carries the pid, so two processes never share one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text(path: str | Path, text: str) -> Path:
    return write_with(path, lambda tmp: tmp.write_text(text))


def write_bytes(path: str | Path, data: bytes) -> Path:
    return write_with(path, lambda tmp: tmp.write_bytes(data))


def write_json(path: str | Path, data: Any, indent: int = 2) -> Path:
    """JSON with numpy scalars/arrays and paths converted; a trailing newline."""
    return write_text(path, json.dumps(data, indent=indent, default=_json_default) + "\n")


def torch_save(obj: Any, path: str | Path) -> Path:
    """torch.save into memory first: saved to a file, the archive's inner folder takes the
    (temporary, pid-bearing) file name, and the same object would give other bytes."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return write_bytes(path, buf.getvalue())
