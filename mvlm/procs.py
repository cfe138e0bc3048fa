"""Child processes that end with their parent (Linux), so a killed launcher, evaluation or
training run leaves no worker behind writing into its folder."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Optional

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: Optional[int] = None, sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send `sig` to this process when its parent exits (prctl
    PR_SET_PDEATHSIG). Call it in the child: first thing in a worker, or as a subprocess's
    `preexec_fn` via `functools.partial(die_with_parent, os.getpid())`. With `parent` given, a
    parent that died before the call ends this process at once. A no-op outside Linux."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if parent is not None and os.getppid() != parent:
        os._exit(1)
