"""Run a tracker over a dataset: one result file + `<seq>_meta.json` per sequence, resumable.

* Each sequence is written atomically (boxes file, then meta with ``"complete": true``); with
  `resume` a sequence whose two files are complete, agree on the frame count and were made by
  the same tracker (settings, checkpoint hash, sentence, start) is skipped; a complete result of
  other settings is moved to ``stale/<UTC time>/`` and tracked again (listed as ``stale`` in the
  summary).
* A failing sequence is recorded (``failures.json`` and the summary) and the others go on.
* `workers > 1`: that many processes, each builds the network once and runs with one torch
  thread and one OpenCV thread (so N workers use N cores without oversubscription).
* Under torchrun (env RANK / WORLD_SIZE) rank r takes sequences[r::world] and writes
  ``summary.rank<r>.json`` / ``failures.rank<r>.json``.
* The tracker only ever sees frames, the sentence and — in box mode — the first GT box.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

import numpy as np

from mvlm.data.image import prefetched
from mvlm.data.sequence import Sequence
from mvlm.evaluate.results import meta_path, result_path, write_results
from mvlm.track.spec import TrackerSpec, describe_tracker

_worker_state: dict[str, Any] = {}


@dataclass
class RunOptions:
    init: Optional[str] = None  # "box" | "language" | None = box for template mode, else language
    max_frames: int = 0  # 0 = every frame (smoke runs may cap it)
    prefetch: int = 1  # frames decoded ahead on a reader thread (0 = decode in the loop)


def _atomic_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


def init_mode(tracker_cfg, options: RunOptions) -> str:
    """How every sequence starts: `options.init`, else language for a template-free tracker."""
    mode = options.init or ("language" if tracker_cfg.template_free else "box")
    if mode not in ("box", "language"):
        raise ValueError(f"init mode must be 'box' or 'language', got {mode!r}")
    if mode == "language" and not tracker_cfg.template_free:
        raise ValueError(f"tracker preset {tracker_cfg.preset!r} uses templates: it needs --init box")
    return mode


def track_sequence(tracker, seq: Sequence, options: RunOptions, info: dict[str, Any]) -> tuple[np.ndarray, dict]:
    """Track every frame of `seq`: (boxes (N,4) x,y,w,h px, meta). GT is read only for the
    init box in box mode."""
    n = len(seq.frames)
    if options.max_frames:
        n = min(n, options.max_frames)
    if n == 0:
        raise ValueError(f"{seq.name}: sequence has no frames")
    if not seq.language.strip():
        raise ValueError(f"{seq.name}: sequence has no language description")
    mode = init_mode(tracker.cfg, options)
    boxes = np.zeros((n, 4))
    per_frame: dict[str, list] = {"kappa": [], "mode": [], "contested": [], "shot_cut": [], "refined": [],
                                 "exit_watch": [], "n_selected": [], "decode_ms": [], "tracker_ms": []}
    timings: dict[str, list] = {}
    start = time.perf_counter()
    first_raw = None
    # frames are decoded one ahead on a reader thread, overlapping the tracker's work;
    # "decode_ms" is then the time spent waiting for a frame
    frames = prefetched(range(n), seq.read_frame, depth=options.prefetch)
    for i in range(n):
        t0 = time.perf_counter()
        frame = next(frames)
        t1 = time.perf_counter()
        if i == 0:
            res = tracker.initialize(frame, seq.language, box=seq.init_box if mode == "box" else None)
            first_raw = res.raw_box
        else:
            res = tracker.track(frame)
        t2 = time.perf_counter()
        boxes[i] = res.box
        per_frame["kappa"].append(res.kappa)
        per_frame["mode"].append(res.mode)
        per_frame["contested"].append(res.contested)
        per_frame["shot_cut"].append(res.shot_cut)
        per_frame["refined"].append(res.refined)
        per_frame["exit_watch"].append(res.exit_watch)
        per_frame["n_selected"].append(res.n_selected)
        per_frame["decode_ms"].append(round((t1 - t0) * 1e3, 3))
        per_frame["tracker_ms"].append(round((t2 - t1) * 1e3, 3))
        for k, v in res.timings.items():
            timings.setdefault(k, []).append(round(v, 3))
    seconds = time.perf_counter() - start
    meta = {
        "sequence": seq.name, "dataset": seq.dataset, "frames": n, "init": mode,
        "frame1_box": boxes[0].tolist(), "frame1_raw_box": [float(v) for v in first_raw],
        "frame1_source": "given_box" if mode == "box" else "global_pass",
        "language": seq.language, **per_frame, "timings_ms": timings,
        "fps": n / seconds if seconds > 0 else None, "config": info, "complete": True,
    }
    return boxes, meta


def is_complete(out_dir: Path, seq: Sequence, options: RunOptions) -> bool:
    """True when both files exist, the meta says complete and the box count matches."""
    txt, meta = result_path(out_dir, seq.name), meta_path(out_dir, seq.name)
    if not (txt.is_file() and meta.is_file()):
        return False
    try:
        info = json.loads(meta.read_text())
        rows = sum(1 for line in txt.read_text().splitlines() if line.strip())
    except (OSError, ValueError):
        return False
    expected = len(seq.frames) if not options.max_frames else min(len(seq.frames), options.max_frames)
    return bool(info.get("complete")) and info.get("frames") == rows == expected


def _identity(spec: TrackerSpec, options: RunOptions) -> Optional[tuple[Any, str]]:
    """What the meta of a result made by the tracker of `spec` records: its description
    (settings, checkpoint sha256) as stored in JSON, and the start mode. None when the start
    mode is impossible for this tracker (every sequence then fails, and no result is its own).
    Read without building the network where the checkpoint's header tells (safetensors)."""
    described = describe_tracker(spec)
    if described is None:  # a torch checkpoint: its metadata is only read by loading it
        from mvlm.track.tracker import build_tracker

        built = build_tracker(spec)
        info, tracker_cfg = built.info, built.tracker.cfg
    else:
        info, tracker_cfg = described.info, described.tracker_cfg
    try:
        init = init_mode(tracker_cfg, options)
    except ValueError:
        return None
    return json.loads(json.dumps(info, default=str)), init


def _made_by(out_dir: Path, seq: Sequence, identity: Optional[tuple[Any, str]]) -> bool:
    """Whether the stored result of `seq` in `out_dir` came from the tracker of `identity`,
    with this sequence's sentence."""
    if identity is None:
        return False
    try:
        meta = json.loads(meta_path(out_dir, seq.name).read_text())
    except (OSError, ValueError):
        return False
    config, init = identity
    return meta.get("config") == config and meta.get("language") == seq.language and meta.get("init") == init


def _set_aside(out_dir: Path, names: list[str]) -> Path:
    """Move the results of `names` (made with other settings) into ``stale/<UTC time>/`` inside
    `out_dir`: they must not be scored with this run's, and nothing written is thrown away."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    folder, n = out_dir / "stale" / stamp, 1
    while folder.exists():  # two resumes within one second keep apart
        folder, n = out_dir / "stale" / f"{stamp}-{n}", n + 1
    folder.mkdir(parents=True)
    for name in names:
        # meta first: a boxes file without its meta is never taken for a finished result
        for path in (meta_path(out_dir, name), result_path(out_dir, name)):
            if path.exists():
                os.replace(path, folder / path.name)
    print(f"{out_dir}: {len(names)} result(s) made with other settings, weights, sentence or start "
          f"moved to {folder} and tracked again: {', '.join(names)}", file=sys.stderr)
    return folder


def _run_one(tracker, info, seq: Sequence, out_dir: Path, options: RunOptions) -> dict:
    start = time.time()
    try:
        boxes, meta = track_sequence(tracker, seq, options, info)
        write_results(out_dir, seq.name, boxes, meta)
        return {"sequence": seq.name, "status": "done", "frames": len(boxes), "start": start, "end": time.time()}
    except Exception as exc:  # one bad sequence must not stop the others
        return {"sequence": seq.name, "status": "failed", "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=5), "start": start, "end": time.time()}


def _worker_init(spec: TrackerSpec, threads: int) -> None:
    import cv2
    import torch

    from mvlm.track.tracker import build_tracker

    if threads:
        torch.set_num_threads(threads)
        cv2.setNumThreads(1)
    try:
        built = build_tracker(spec)
    except Exception as exc:  # noqa: BLE001 - a raising initializer makes the pool respawn it forever
        _worker_state.update(error=f"the tracker could not be built: {type(exc).__name__}: {exc}",
                             traceback=traceback.format_exc(limit=5))
        return
    _worker_state.update(tracker=built.tracker, info=built.info)


def _worker_run(args: tuple[Sequence, str, RunOptions]) -> dict:
    seq, out_dir, options = args
    if "error" in _worker_state:
        now = time.time()
        return {"sequence": seq.name, "status": "failed", "error": _worker_state["error"],
                "traceback": _worker_state["traceback"], "start": now, "end": now}
    return _run_one(_worker_state["tracker"], _worker_state["info"], seq, Path(out_dir), options)


def distributed_rank() -> tuple[int, int]:
    """(rank, world) from torchrun's environment, (0, 1) outside it."""
    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as exc:
        raise ValueError(f"RANK/WORLD_SIZE must be integers: {exc}") from exc


def run_dataset(
    sequences: list[Sequence],
    out_dir: str | Path,
    spec: TrackerSpec,
    workers: int = 1,
    resume: bool = False,
    options: RunOptions | None = None,
    on_result: Callable[[dict], None] | None = None,
    mp_context: str = "spawn",
) -> dict:
    """Track `sequences` into `out_dir`; returns (and writes) the summary."""
    options = options or RunOptions()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rank, world = distributed_rank()
    mine = sequences[rank::world] if world > 1 else list(sequences)
    complete = [s for s in mine if resume and is_complete(out_dir, s, options)]
    stale = []
    if complete:
        identity = _identity(spec, options)
        stale = [s.name for s in complete if not _made_by(out_dir, s, identity)]
        if stale:
            _set_aside(out_dir, stale)
    skipped = [s.name for s in complete if s.name not in stale]
    kept = set(skipped)
    todo = [s for s in mine if s.name not in kept]
    results: list[dict] = []
    wall0 = time.time()
    workers = max(1, min(int(workers), len(todo) or 1))
    if todo and workers == 1:
        from mvlm.track.tracker import build_tracker

        built = build_tracker(spec)
        for seq in todo:
            r = _run_one(built.tracker, built.info, seq, out_dir, options)
            results.append(r)
            if on_result:
                on_result(r)
    elif todo:
        # settings, checkpoint path and header are checked here, so that a bad spec is one
        # clear error before any worker starts (a torch checkpoint is read by the workers)
        describe_tracker(spec)
        import multiprocessing  # the parent hands out sequences and gets dicts back: no torch here

        ctx = multiprocessing.get_context(mp_context)
        with ctx.Pool(workers, initializer=_worker_init, initargs=(spec, 1)) as pool:
            for r in pool.imap_unordered(_worker_run, [(s, str(out_dir), options) for s in todo]):
                results.append(r)
                if on_result:
                    on_result(r)
    done = [r for r in results if r["status"] == "done"]
    failed = [{k: r[k] for k in ("sequence", "error", "traceback")} for r in results if r["status"] == "failed"]
    frames = sum(r["frames"] for r in done)
    busy = (max(r["end"] for r in done) - min(r["start"] for r in done)) if done else 0.0
    summary = {
        "out_dir": str(out_dir), "rank": rank, "world_size": world, "workers": workers,
        "sequences": len(mine), "done": [r["sequence"] for r in done], "skipped": skipped, "stale": stale,
        "failed": [f["sequence"] for f in failed], "frames": frames,
        "tracking_fps": frames / busy if busy > 0 else None,  # excludes worker start-up
        "wall_seconds": time.time() - wall0, "spec": asdict(spec), "options": asdict(options),
    }
    suffix = f".rank{rank}" if world > 1 else ""
    _atomic_json(out_dir / f"failures{suffix}.json", failed)
    _atomic_json(out_dir / f"summary{suffix}.json", summary)
    return summary


def reuse_identical_results(source_dir: str | Path, out_dir: str | Path, sequences: Iterable[Sequence],
                            spec: TrackerSpec, options: RunOptions | None = None) -> list[str]:
    """Copy into `out_dir` the complete results of `source_dir` that this `spec` would reproduce:
    same tracker settings, same checkpoint content (sha256), same sentence and start. Tracking is
    deterministic, so a variant that resolves to an already evaluated configuration (an ablation
    equal to the full tracker) needs no second run. Returns the names copied; a sequence that is
    already complete in `out_dir` is left alone."""
    import shutil

    options = options or RunOptions()
    source_dir, out_dir = Path(source_dir), Path(out_dir)
    if not source_dir.is_dir():
        return []
    identity = _identity(spec, options)
    copied = []
    for seq in sequences:
        if is_complete(out_dir, seq, options) or not is_complete(source_dir, seq, options):
            continue
        if not _made_by(source_dir, seq, identity):
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        meta_path(out_dir, seq.name).unlink(missing_ok=True)  # a stale meta must not vouch for new boxes
        # boxes first, meta last: the meta's "complete" marks a finished pair, as in write_results
        shutil.copyfile(result_path(source_dir, seq.name), result_path(out_dir, seq.name))
        shutil.copyfile(meta_path(source_dir, seq.name), meta_path(out_dir, seq.name))
        copied.append(seq.name)
    return copied


def print_progress(result: dict) -> None:
    if result["status"] == "done":
        secs = result["end"] - result["start"]
        print(f"{result['sequence']}: {result['frames']} frames, {result['frames'] / max(secs, 1e-9):.1f} FPS",
              file=sys.stderr)
    else:
        print(f"{result['sequence']}: FAILED {result['error']}", file=sys.stderr)


def sequences_subset(sequences: Iterable[Sequence], names: Optional[list[str]]) -> list[Sequence]:
    """Keep `names` (in the given order); unknown names are an error that lists them."""
    sequences = list(sequences)
    if not names:
        return sequences
    by_name = {s.name: s for s in sequences}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"unknown sequences: {', '.join(missing)}")
    return [by_name[n] for n in names]
