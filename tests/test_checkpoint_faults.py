"""Bad checkpoint files: corrupt or random bytes give one clear line naming the file (no
traceback, no advice to load with ``weights_only=False``); `mvlm checkpoint inspect` reads
shapes without inflating weights, and a zip bomb is refused before it inflates.

docs/reliability.md ("Checkpoints") lists each case with the test that covers it.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from mvlm.model import CheckpointError, inspect_checkpoint
from mvlm.model import checkpoint as ckpt


def mvlm(*argv: str, cwd: Path) -> tuple[subprocess.CompletedProcess, int]:
    """Run `python -m mvlm ...`; returns (result, peak RSS of that child in MiB)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    with open(cwd / "out.txt", "w+") as out, open(cwd / "err.txt", "w+") as err:
        proc = subprocess.Popen([sys.executable, "-m", "mvlm", *argv], cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # the rusage of this one child
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0), err.seek(0)
        result = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
    return result, usage.ru_maxrss // 1024


class _Storage:
    """Stands for a storage record in a hand-written torch archive pickle."""


def zip_bomb(path: Path, numel: int) -> Path:
    """A torch-zip checkpoint {"w": float32 tensor of `numel` zeros} whose storage member is
    deflate-compressed: a few KB on disk per MB inflated (torch.save never compresses)."""
    storage = _Storage()

    class Tensor:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, (storage, 0, (numel,), (1,), False, collections.OrderedDict()))

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", numel) if obj is storage else None

    buf = io.BytesIO()
    Pickler(buf, protocol=2).dump({"w": Tensor()})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("bomb/data.pkl", buf.getvalue())
        archive.writestr("bomb/byteorder", "little")
        info = zipfile.ZipInfo("bomb/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as fh:
            chunk = bytes(1 << 20)
            for _ in range(numel * 4 // len(chunk)):
                fh.write(chunk)
    return path


@pytest.mark.parametrize("content", [os.urandom(4096), b"PK\x03\x04" + os.urandom(4096)])
def test_random_bytes_are_one_line_without_torch_advice(tmp_path, content):
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        ckpt.read_checkpoint(path)
    message = str(err.value)
    assert "weights.pth" in message and "\n" not in message
    assert "weights_only" not in message and "arbitrary code" not in message


def test_corrupt_checkpoint_in_track_is_one_line_and_nonzero(tmp_path):
    import cv2

    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "00000001.jpg"), np.zeros((64, 64, 3), np.uint8))
    good = tmp_path / "good.pth"
    torch.save({"net": {"w": torch.zeros(1000)}}, good)
    for name, data in (("cut.pth", good.read_bytes()[:700]), ("noise.pth", os.urandom(5000))):
        (tmp_path / name).write_bytes(data)
        # the model is stated, so the loader gets as far as reading the file
        run, _ = mvlm("track", "--frames", str(frames), "--text", "x", "--checkpoint", name,
                      "--checkpoint-preset", "tiny", "--mode", "tf", cwd=tmp_path)
        assert run.returncode == 2, run.stderr
        lines = run.stderr.strip().splitlines()
        assert lines == [lines[-1]] and lines[0].startswith(f"mvlm track: error: {name}: cannot read checkpoint")
        assert "Traceback" not in run.stderr and "weights_only" not in run.stderr


def test_inspect_reads_shapes_without_inflating_and_full_read_refuses_the_bomb(tmp_path, monkeypatch):
    path = zip_bomb(tmp_path / "bomb.pth", numel=2 * 2**20)  # 8 MiB inflated
    assert path.stat().st_size < 100_000
    opened = []
    real_open = zipfile.ZipFile.open
    monkeypatch.setattr(zipfile.ZipFile, "open",
                        lambda self, name, *a, **k: opened.append(getattr(name, "filename", name))
                        or real_open(self, name, *a, **k))
    info = inspect_checkpoint(path)
    assert info["keys"] == {"w": [[2 * 2**20], "float32"]} and info["num_elements"] == 2 * 2**20
    assert "bomb/data/0" not in opened  # the weights were never inflated
    monkeypatch.setattr(ckpt, "INFLATE_FLOOR", 1 << 20)
    with pytest.raises(CheckpointError, match=r"bomb.pth: archive members would inflate to 8,388,"):
        ckpt.read_checkpoint(path)


def test_lazy_safetensors_inspect_matches_the_tensors(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "m.safetensors"
    save_file({"a": torch.zeros(3, 4), "b": torch.ones(5, dtype=torch.int64),
               "c": torch.zeros(2, dtype=torch.bfloat16)}, str(path))
    info = inspect_checkpoint(path)
    assert info["keys"] == {"a": [[3, 4], "float32"], "b": [[5], "int64"], "c": [[2], "bfloat16"]}


@pytest.mark.slow  # streams 1 GiB through zlib to build the file (~5 s) and starts the CLI
def test_inspect_of_a_1mb_file_inflating_to_1gib_stays_small(tmp_path):
    path = zip_bomb(tmp_path / "bomb.pth", numel=2**28)  # 1 GiB of float32 zeros
    assert path.stat().st_size < 2 * 2**20
    small = tmp_path / "small.pth"
    torch.save({"w": torch.zeros(4)}, small)
    _, baseline_mib = mvlm("checkpoint", "inspect", str(small), "--json", cwd=tmp_path)  # imports alone
    run, peak_mib = mvlm("checkpoint", "inspect", str(path), "--json", cwd=tmp_path)
    print(f"peak RSS of inspect: {peak_mib} MiB (a 4-element file: {baseline_mib} MiB)")
    assert '"num_elements": 268435456' in run.stdout, run.stderr
    # was baseline + ~2 GB (the 1 GiB member inflated, then copied into a tensor)
    assert peak_mib < baseline_mib + 256, f"inspect used {peak_mib} MiB"
    tracked, _ = mvlm("track", "--frames", str(tmp_path), "--text", "x", "--checkpoint", str(path),
                      "--checkpoint-preset", "tiny", "--mode", "tf", cwd=tmp_path)
    assert tracked.returncode == 2 and "would inflate to 1,073,741," in tracked.stderr
