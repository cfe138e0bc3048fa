"""Package namespaces whose names are imported on first use (PEP 562).

`mvlm.model` and `mvlm.track` re-export names from modules that import torch; a process that
only needs their torch-free parts (`mvlm.model.metadata`, `mvlm.track.spec`) must be able to
import those without paying for torch."""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, homes: dict[str, str]) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """(`__all__`, `__getattr__`, `__dir__`) for `package`, where `homes` maps each exported
    name to the module that defines it."""
    names = sorted(homes)

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(homes[name]), name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return names

    return names, __getattr__, __dir__
