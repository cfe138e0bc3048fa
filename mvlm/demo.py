"""Track a target described in words on your own video: sources, drawing, writers, MJPEG.

Pieces shared by `mvlm demo` (command line) and `mvlm serve` (browser UI):

* frame sources: a video file, a folder of images (or a LaSOT-style sequence with ``img/``),
  a webcam index; every source yields RGB uint8 frames ``(H, W, 3)``;
* `load_tracker`: an `MVLMTracker` from a checkpoint, or a random-init network (said loudly);
* `annotate`: box, κ, mode, FPS and the sentence drawn on a copy of the frame;
* `VideoWriterMP4` / `ResultsWriter`: annotated mp4 (OpenCV mp4v) and ``x,y,w,h`` per frame;
* `FrameBroadcaster` + `stream_app`: the latest annotated JPEG served as MJPEG on loopback.

Unlike the reference demo, the first frame gets a model prediction (template-free: a global
pass), κ is shown on every frame, and the device is passed to every part of the model.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import numpy as np

from mvlm.data.sequence import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")

# BGR colours for OpenCV drawing; the mode is readable from the box colour alone
MODE_COLOURS = {"local": (60, 200, 60), "global": (0, 140, 255), "init": (255, 160, 0)}


class DemoError(ValueError):
    """Bad demo input (unreadable video, bad box, empty sentence...). The message names it."""


class PathRefused(DemoError):
    """A frame folder or frame file resolves (after symlinks) outside the allowed roots."""


class PartialRun(DemoError):
    """The run stopped part-way; what was tracked is in the ``.partial`` files named here."""

    def __init__(self, message: str, partial: list[str], interrupted: bool = False):
        super().__init__(message)
        self.partial = partial
        self.interrupted = interrupted


# --------------------------------------------------------------------------------------------
# frame sources


def _natural_key(path: Path) -> list:
    # "img2" before "img10": frame folders are rarely zero-padded consistently
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


class FrameSource:
    """Iterable of RGB uint8 frames (H, W, 3) with a name, a frame rate and a length (-1 unknown)."""

    name: str = ""
    fps: float = 30.0
    frame_count: int = -1

    def frames(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    def first_frame(self) -> np.ndarray:
        for frame in self.frames():
            return frame
        raise DemoError(f"{self.name}: no frames")


def confine(path: Path, roots: Optional[list[Path]], what: str) -> None:
    """`PathRefused` unless ``realpath(path)`` lies inside one of `roots` (None: no check)."""
    if roots is None:
        return
    real = Path(os.path.realpath(path))
    if not any(real.is_relative_to(root) for root in roots):
        # the target is not named: it lies outside what the caller may see
        raise PathRefused(f"{path}: {what} resolves outside the allowed roots (symlink out)")


class ImageFolderSource(FrameSource):
    """Images of a folder in natural order; a LaSOT sequence folder is read from its ``img/``.

    With `roots`, the folder and every frame file must resolve (symlinks followed) inside one
    of them: checked when listing and again just before each file is read.
    """

    def __init__(self, folder: str | Path, roots: Optional[list[Path]] = None):
        folder = Path(folder)
        self.roots = None if roots is None else [Path(os.path.realpath(r)) for r in roots]
        if not folder.is_dir():
            raise DemoError(f"{folder}: frame folder not found")
        if (folder / "img").is_dir():
            folder = folder / "img"
        confine(folder, self.roots, "frame folder")
        self.paths = sorted(
            (p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
            key=_natural_key,
        )
        if not self.paths:
            raise DemoError(f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)})")
        for path in self.paths:
            confine(path, self.roots, "frame file")
        self.name = str(folder)
        self.frame_count = len(self.paths)

    def frames(self) -> Iterator[np.ndarray]:
        from mvlm.data.image import read_rgb

        for path in self.paths:
            confine(path, self.roots, "frame file")  # it may have been swapped for a link since
            try:
                yield read_rgb(path)
            except DataError as exc:
                raise DemoError(str(exc)) from exc


class CaptureSource(FrameSource):
    """A video file or a webcam through OpenCV's VideoCapture (decoded on the fly)."""

    def __init__(self, target: str | Path | int):
        import cv2

        self.target = target
        if isinstance(target, int):
            self.name = f"webcam {target}"
        else:
            path = Path(target)
            if not path.is_file():
                raise DemoError(f"{path}: video file not found")
            self.name = str(path)
        cap = self._open()
        try:
            ok, frame = cap.read()
            if not ok or frame is None:
                raise DemoError(f"{self.name}: cannot decode a first frame (not a video, or a codec OpenCV lacks)")
            fps = cap.get(cv2.CAP_PROP_FPS)
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or -1)
        finally:
            cap.release()
        self.fps = float(fps) if fps and math.isfinite(fps) and 0 < fps < 1000 else 30.0
        self.frame_count = count if (count > 0 and not isinstance(target, int)) else -1

    def _open(self):
        import cv2

        src = self.target if isinstance(self.target, int) else str(self.target)
        cap = cv2.VideoCapture(src)
        if not cap.isOpened():
            cap.release()
            raise DemoError(f"{self.name}: cannot open (not a video OpenCV can decode, or no such camera)")
        return cap

    def frames(self) -> Iterator[np.ndarray]:
        import cv2

        cap = self._open()
        try:
            while True:
                ok, frame = cap.read()
                if not ok or frame is None:
                    return
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        finally:
            cap.release()


def open_source(video: str | Path | None = None, frames: str | Path | None = None,
                webcam: int | None = None) -> FrameSource:
    """Exactly one of: a video file, a folder of frames, a webcam index."""
    given = [v is not None for v in (video, frames, webcam)]
    if sum(given) != 1:
        raise DemoError("give exactly one of --video, --frames, --webcam")
    if webcam is not None:
        return CaptureSource(int(webcam))
    if frames is not None:
        return ImageFolderSource(frames)
    if Path(video).is_dir():  # a folder passed as --video is still usable
        return ImageFolderSource(video)
    return CaptureSource(video)


def open_path(path: str | Path, roots: Optional[list[Path]] = None) -> FrameSource:
    """A server-side path: a frame folder (or LaSOT sequence) or a video file; with `roots`,
    everything read must resolve inside them."""
    path = Path(path)
    if path.is_dir():
        return ImageFolderSource(path, roots)
    if roots is not None:
        confine(path, [Path(os.path.realpath(r)) for r in roots], "video file")
    return CaptureSource(path)


# --------------------------------------------------------------------------------------------
# boxes and text


def parse_box(text: str | None) -> Optional[np.ndarray]:
    """``"x,y,w,h"`` (pixels) -> float64 (4,); None passes through; NaN or w,h <= 0 is an error."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    parts = text.split(",") if isinstance(text, str) else list(text)
    try:
        box = np.array([float(p) for p in parts], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DemoError(f"init box {text!r}: expected four numbers x,y,w,h") from exc
    return check_box(box, f"init box {text!r}")


def check_box(box: Any, what: str = "box", frame_shape: tuple | None = None) -> np.ndarray:
    """Validate an ``x, y, w, h`` pixel box (finite, positive size, overlapping the frame)."""
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.size != 4:
        raise DemoError(f"{what}: expected four numbers x,y,w,h, got {b.size}")
    if not np.isfinite(b).all():
        raise DemoError(f"{what}: contains NaN or infinity")
    if b[2] <= 0 or b[3] <= 0:
        raise DemoError(f"{what}: width and height must be > 0")
    if frame_shape is not None:
        h, w = frame_shape[:2]
        if b[0] >= w or b[1] >= h or b[0] + b[2] <= 0 or b[1] + b[3] <= 0:
            raise DemoError(f"{what}: lies outside the {w}x{h} frame")
    return b


def check_text(text: Any) -> str:
    """The sentence describing the target; empty or whitespace-only is an error."""
    if not isinstance(text, str) or not text.strip():
        raise DemoError("the target sentence is empty: describe the target in words (--text)")
    return " ".join(text.split())


# --------------------------------------------------------------------------------------------
# tracker


@dataclass
class LoadedTracker:
    tracker: Any
    description: str  # one line for logs and the UI
    random_init: bool
    model_preset: str
    tracker_preset: str
    compat: str
    device: str


def resolve_device(device: str) -> str:
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DemoError(f"device {device!r} requested but CUDA is not available on this machine")
    if device != "cpu" and not device.startswith("cuda"):
        raise DemoError(f"device {device!r}: expected cpu or cuda[:N]")
    return device


def load_tracker(checkpoint: str | Path | None = None, preset: str = "tiny",
                 tracker_preset: str | None = None, compat: str = "corrected",
                 device: str = "cpu", seed: int = 0, checkpoint_preset: str | None = None,
                 mode: str | None = None, text_weights: str | None = None,
                 random_init: bool = False) -> LoadedTracker:
    """An `MVLMTracker` ready for `initialize`.

    With a checkpoint, the model config and tracker preset come from its metadata (explicit
    arguments win for the tracker preset). Without one, the `preset` network is built with
    ``torch.manual_seed(seed)``: random weights, so the boxes mean nothing — the description
    says so and callers print it. `checkpoint_preset`, `mode`, `text_weights`, `random_init`
    say how to load a file without a config inside (the released .pth.tar; docs/weights.md).
    """
    from mvlm.config import ConfigError
    from mvlm.model.checkpoint import CheckpointError
    from mvlm.track.tracker import TrackerError, TrackerSpec, build_tracker

    device = resolve_device(device)
    if checkpoint and not Path(checkpoint).is_file():
        raise DemoError(f"{checkpoint}: checkpoint file not found")
    from mvlm.model.metadata import model_section

    spec = TrackerSpec(checkpoint=str(checkpoint) if checkpoint else None, model_preset=preset,
                       tracker_preset=tracker_preset, compat=compat, device=device, seed=seed,
                       checkpoint_model=model_section(checkpoint_preset, mode, text_weights, random_init))
    try:
        built = build_tracker(spec)
    except (ConfigError, TrackerError, CheckpointError) as exc:
        raise DemoError(str(exc)) from exc
    tracker = built.tracker
    model_preset = built.info.get("model_preset", preset)
    tracker_name = built.info["tracker"]["preset"]
    random_init = built.random_init or bool(built.info.get("random_init"))
    where = f"checkpoint {checkpoint}" if checkpoint else (
        f"RANDOM-INIT {model_preset} network (seed {seed}; no checkpoint: boxes are meaningless)")
    description = f"{where}, tracker preset {tracker_name}, compat {compat}, device {device}"
    return LoadedTracker(tracker, description, random_init, model_preset, tracker_name, compat, device)


@dataclass
class FrameResult:
    """One frame's outcome in the demo's terms; `box` is x, y, w, h in pixels."""

    index: int
    box: np.ndarray
    kappa: Optional[float]
    mode: str  # "local" | "global" | "init" (given box echoed on the init frame)
    next_mode: Optional[str]
    seconds: float  # tracker time for this frame


def _as_result(raw: Any, index: int, seconds: float, fallback_box: Optional[np.ndarray]) -> FrameResult:
    """Normalize a tracker's TrackResult (or None from an init that predicts nothing)."""
    if raw is None:
        if fallback_box is None:
            raise DemoError(f"frame {index}: the tracker returned no result and no box was given")
        return FrameResult(index, np.asarray(fallback_box, float), None, "init", None, seconds)
    box = np.asarray(getattr(raw, "box"), dtype=np.float64).reshape(4)
    kappa = getattr(raw, "kappa", None)
    kappa = None if kappa is None else float(kappa)
    return FrameResult(index, box, kappa, str(getattr(raw, "mode", "local")),
                       getattr(raw, "next_mode", None), seconds)


def initialize(tracker: Any, frame: np.ndarray, text: str, box: Optional[np.ndarray],
               index: int = 0) -> FrameResult:
    """(Re-)initialize on `frame`; the frame itself gets a result (prediction or the given box)."""
    text = check_text(text)
    if box is not None:
        box = check_box(box, "init box", frame.shape)
    t0 = time.perf_counter()
    raw = tracker.initialize(frame, text, box=box)
    return _as_result(raw, index, time.perf_counter() - t0, box)


def track(tracker: Any, frame: np.ndarray, index: int) -> FrameResult:
    t0 = time.perf_counter()
    raw = tracker.track(frame)
    return _as_result(raw, index, time.perf_counter() - t0, None)


class FpsMeter:
    """Frames per second over wall time, smoothed: fps ← 0.9·fps + 0.1·(1/Δt)."""

    def __init__(self) -> None:
        self.fps = 0.0
        self._last: Optional[float] = None

    def tick(self) -> float:
        now = time.perf_counter()
        if self._last is not None and now > self._last:
            inst = 1.0 / (now - self._last)
            self.fps = inst if self.fps == 0.0 else 0.9 * self.fps + 0.1 * inst
        self._last = now
        return self.fps


# --------------------------------------------------------------------------------------------
# drawing and writers


def annotate(frame_rgb: np.ndarray, result: FrameResult, text: str = "", fps: float = 0.0) -> np.ndarray:
    """Copy of the frame with the box (colour = mode), κ, mode, frame index, FPS and sentence."""
    import cv2

    img = cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR)
    h, w = img.shape[:2]
    scale = max(0.3, min(w, h) / 600.0)  # legible on 128x96 and on 1080p
    thick = max(1, int(round(scale * 2)))
    colour = MODE_COLOURS.get(result.mode, (0, 0, 255))
    x, y, bw, bh = result.box
    if np.isfinite(result.box).all() and bw > 0 and bh > 0:
        cv2.rectangle(img, (int(round(x)), int(round(y))), (int(round(x + bw)), int(round(y + bh))),
                      colour, thick, cv2.LINE_8)  # axis-aligned: crisp without AA
    kappa = "n/a" if result.kappa is None else f"{result.kappa:+.3f}"
    gate = f"  next {result.next_mode}" if result.next_mode else ""  # the gate's decision for the next frame
    lines = [f"#{result.index}  k={kappa}  {result.mode}{gate}  {fps:.1f} FPS"]
    if text:
        lines.append(text if len(text) <= 60 else text[:57] + "...")
    font = cv2.FONT_HERSHEY_SIMPLEX
    # translucent label backing: the box stays visible under the text on small frames
    backing = img.copy()
    placed, y0 = [], 0
    for line in lines:
        (tw, th), base = cv2.getTextSize(line, font, scale, 1)
        pad = max(2, th // 3)
        cv2.rectangle(backing, (0, y0), (min(w, tw + 2 * pad), y0 + th + base + 2 * pad), (0, 0, 0), -1)
        placed.append((line, (pad, y0 + pad + th)))
        y0 += th + base + 2 * pad
    img = cv2.addWeighted(backing, 0.6, img, 0.4, 0.0)
    for line, origin in placed:
        cv2.putText(img, line, origin, font, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def encode_jpeg(frame_rgb: np.ndarray, quality: int = 80) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR),
                           [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise DemoError("JPEG encoding failed")
    return buf.tobytes()


def partial_name(path: Path) -> Path:
    """Where an unfinished run's output goes: ``results.txt`` -> ``results.txt.partial``,
    ``out.mp4`` -> ``out.partial.mp4`` (a video keeps its extension so players open it)."""
    if path.suffix.lower() in VIDEO_SUFFIXES:
        return path.with_name(f"{path.stem}.partial{path.suffix}")
    return path.with_name(path.name + ".partial")


class VideoWriterMP4:
    """Annotated frames to an mp4 (OpenCV ``mp4v``); opened lazily at the first frame's size.

    Frames go to a temporary file beside `path`; `close(ok=True)` moves it onto `path`,
    `close(ok=False)` onto `partial_name(path)` (or deletes it when no frame was written), so
    an existing file at `path` is only ever replaced by a finished video.
    """

    def __init__(self, path: str | Path, fps: float = 30.0):
        self.path = Path(path)
        self.fps = fps if fps > 0 else 30.0
        self._writer = None
        self.count = 0
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        # the suffix stays last: OpenCV picks the container from it
        self._tmp = self.path.with_name(f".{self.path.stem}.{os.getpid()}.tmp{self.path.suffix}")

    def write(self, frame_rgb: np.ndarray) -> None:
        import cv2

        if self._writer is None:
            h, w = frame_rgb.shape[:2]
            self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (w, h))
            if not self._writer.isOpened():
                self._writer = None
                self._tmp.unlink(missing_ok=True)
                raise DemoError(f"{self.path}: cannot open a video writer (mp4v) here")
        self._writer.write(cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        self.count += 1

    def close(self, ok: bool = True) -> Optional[Path]:
        """Finish the file; returns where it went (None when nothing was written)."""
        if self._writer is None:
            return None
        self._writer.release()
        self._writer = None
        if self.count == 0:
            self._tmp.unlink(missing_ok=True)
            return None
        dest = self.path if ok else partial_name(self.path)
        os.replace(self._tmp, dest)
        return dest


class ResultsWriter:
    """``x,y,w,h`` per frame (comma-separated ``%.4f``), kept in memory (~40 bytes a frame) and
    written atomically at `close`: onto `path` when the run finished (`ok`), else onto
    `partial_name(path)`; nothing at all when no frame was tracked."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.lines: list[str] = []

    @property
    def count(self) -> int:
        return len(self.lines)

    def write(self, box: np.ndarray) -> None:
        self.lines.append(",".join(f"{v:.4f}" for v in np.asarray(box, float).reshape(4)) + "\n")

    def close(self, ok: bool = True) -> Optional[Path]:
        from mvlm import atomic

        if not self.lines:
            return None
        dest = self.path if ok else partial_name(self.path)
        return atomic.write_text(dest, "".join(self.lines))


# --------------------------------------------------------------------------------------------
# MJPEG


class FrameBroadcaster:
    """Latest JPEG + a status dict, handed from the tracking thread to HTTP clients."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.jpeg: Optional[bytes] = None
        self.seq = 0  # bumped at every publish; clients send a frame when it changes
        self.status: dict = {}
        self.closed = False

    def publish(self, jpeg: bytes, status: dict | None = None) -> None:
        with self._lock:
            self.jpeg = jpeg
            self.seq += 1
            if status is not None:
                self.status = dict(status)

    def latest(self) -> tuple[int, Optional[bytes]]:
        with self._lock:
            return self.seq, self.jpeg

    def close(self) -> None:
        self.closed = True


MJPEG_BOUNDARY = "frame"
MJPEG_MEDIA_TYPE = f"multipart/x-mixed-replace; boundary={MJPEG_BOUNDARY}"


def mjpeg_part(jpeg: bytes) -> bytes:
    head = f"--{MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
    return head.encode() + jpeg + b"\r\n"


async def mjpeg_parts(source: FrameBroadcaster, interval: float = 1 / 30,
                      max_parts: int | None = None) -> Any:
    """Async generator of multipart parts: one per new frame, until the source closes."""
    sent_seq, sent = -1, 0
    while True:
        seq, jpeg = source.latest()
        if jpeg is not None and seq != sent_seq:
            sent_seq = seq
            yield mjpeg_part(jpeg)
            sent += 1
            if max_parts is not None and sent >= max_parts:
                return
        elif source.closed:
            return
        await asyncio.sleep(interval)


STREAM_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>mvlm demo</title>
<style>body{background:#111;color:#ddd;font:14px sans-serif;margin:1em}img{max-width:100%}</style>
</head><body><h3>mvlm demo: live</h3><img src="stream" alt="live frames"><pre id="s"></pre>
<script>setInterval(async()=>{try{const r=await fetch('status');
document.getElementById('s').textContent=JSON.stringify(await r.json(),null,1)}catch(e){}},500)</script>
</body></html>"""


def stream_app(source: FrameBroadcaster):
    """A small FastAPI app: ``/`` page, ``/stream`` MJPEG, ``/status`` JSON."""
    from fastapi import FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

    app = FastAPI(title="mvlm demo stream")

    @app.get("/", response_class=HTMLResponse)
    def page() -> str:
        return STREAM_PAGE

    @app.get("/status")
    def status() -> JSONResponse:
        return JSONResponse({**source.status, "frames_published": source.seq, "finished": source.closed})

    @app.get("/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(mjpeg_parts(source), media_type=MJPEG_MEDIA_TYPE)

    return app


class BackgroundServer:
    """uvicorn in a daemon thread (for the demo's MJPEG stream and the browser tests)."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 8090):
        import uvicorn

        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                timeout_graceful_shutdown=1, lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="mvlm-stream", daemon=True)
        self.url = f"http://{host}:{port}/"

    def start(self, timeout: float = 10.0) -> "BackgroundServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise DemoError(f"could not start the stream server on {self.url} (port in use?)")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)


# --------------------------------------------------------------------------------------------
# the demo loop


@dataclass
class DemoSummary:
    frames: int = 0
    seconds: float = 0.0
    tracker_seconds: float = 0.0
    modes: dict = field(default_factory=dict)  # mode -> frame count
    video: Optional[str] = None
    results: Optional[str] = None
    expected_frames: int = -1  # what the source said it holds (-1 unknown)
    stopped_early: bool = False  # --max-frames reached

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def truncated(self) -> bool:
        """Fewer frames decoded than the container reports (a cut or damaged file)."""
        return not self.stopped_early and 0 < self.frames < self.expected_frames


def run_demo(source: FrameSource, tracker: Any, text: str, init_box: Optional[np.ndarray] = None,
             video_out: str | Path | None = None, results_out: str | Path | None = None,
             broadcaster: Optional[FrameBroadcaster] = None, max_frames: int | None = None,
             on_frame: Optional[Callable[[FrameResult, float], None]] = None,
             window: Optional["Window"] = None) -> DemoSummary:
    """Track `text` through `source`; frame 0 initializes (and is predicted), then `track`.

    Writes one results line and one annotated video frame per processed frame; the files
    appear only when the run finishes. If it stops part-way (a corrupt frame, Ctrl-C), what was
    tracked goes to ``.partial`` files and `PartialRun` names them; when nothing was tracked,
    no file is created and existing ones are untouched. `window`: a live display (`open_window`)
    shown every annotated frame; its quit key ends the run like `max_frames` (finished files).
    """
    text = check_text(text)
    writer = VideoWriterMP4(video_out, source.fps) if video_out else None
    results = ResultsWriter(results_out) if results_out else None
    summary = DemoSummary(video=str(video_out) if video_out else None,
                          results=str(results_out) if results_out else None,
                          expected_frames=source.frame_count)
    meter = FpsMeter()
    start = time.perf_counter()
    try:
        for index, frame in enumerate(source.frames()):
            if max_frames is not None and index >= max_frames:
                summary.stopped_early = True
                break
            res = initialize(tracker, frame, text, init_box, index) if index == 0 else track(tracker, frame, index)
            fps = meter.tick()
            summary.frames += 1
            summary.tracker_seconds += res.seconds
            summary.modes[res.mode] = summary.modes.get(res.mode, 0) + 1
            if results:
                results.write(res.box)
            if writer or broadcaster or window:
                shown = annotate(frame, res, text, fps)
                if writer:
                    writer.write(shown)
                if broadcaster:
                    broadcaster.publish(encode_jpeg(shown), status_of(res, text, fps, source.frame_count))
            if on_frame:
                on_frame(res, fps)
            if window is not None and window.show(shown) == "quit":
                summary.stopped_early = True
                break
    except BaseException as exc:
        summary.seconds = time.perf_counter() - start
        kept = [str(p) for p in (writer.close(ok=False) if writer else None,
                                 results.close(ok=False) if results else None) if p is not None]
        if not kept:
            raise
        why = "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc) or type(exc).__name__
        raise PartialRun(f"{why}; stopped after {summary.frames} frames: partial output in "
                         f"{', '.join(kept)}", kept, isinstance(exc, KeyboardInterrupt)) from exc
    summary.seconds = time.perf_counter() - start
    done = summary.frames > 0
    if writer:
        writer.close(ok=done)
    if results:
        results.close(ok=done)
    if not done:
        raise DemoError(f"{source.name}: no frames could be read")
    return summary


def status_of(res: FrameResult, text: str, fps: float, total: int) -> dict:
    """JSON-ready view of one frame's result."""
    return {
        "frame": res.index,
        "total_frames": total,
        "box": [round(float(v), 2) for v in res.box],
        "kappa": None if res.kappa is None or not math.isfinite(res.kappa) else round(res.kappa, 5),
        "mode": res.mode,
        "next_mode": res.next_mode,
        "fps": round(fps, 2),
        "text": text,
    }


# --------------------------------------------------------------------------------------------
# windows: drawing the first box (--select) and the live display


def has_display() -> bool:
    """A desktop to open windows on: $DISPLAY / $WAYLAND_DISPLAY on Linux, always elsewhere."""
    import sys

    if sys.platform.startswith(("win", "darwin")):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def opencv_has_gui() -> bool:
    """False for opencv-python-headless (no HighGUI: imshow / selectROI raise)."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.split(":", 1)[1].strip().upper() not in ("NONE", "")
    return False


class Window:
    """A desktop window of the CLI demo. `select_box(frame)`: the user drags a box on the frame
    (Enter / Space accepts, Esc / c cancels -> None); `show(frame)`: one annotated frame, returns
    "quit" when Esc or q was pressed; Space pauses and resumes (while paused the frame stays)."""

    title = "mvlm demo"

    def select_box(self, frame_rgb: np.ndarray) -> Optional[np.ndarray]:
        raise NotImplementedError

    def show(self, frame_rgb: np.ndarray) -> Optional[str]:
        raise NotImplementedError

    def close(self) -> None:
        pass


class OpenCVWindow(Window):
    """OpenCV's HighGUI (the `opencv-python` wheel): cv2.selectROI and cv2.imshow."""

    def select_box(self, frame_rgb: np.ndarray) -> Optional[np.ndarray]:
        import cv2

        title = f"{self.title}: drag the target's box, Enter to accept, c to cancel"
        x, y, w, h = cv2.selectROI(title, cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR), showCrosshair=True)
        cv2.destroyWindow(title)
        return np.array([x, y, w, h], float) if w > 1 and h > 1 else None

    def show(self, frame_rgb: np.ndarray) -> Optional[str]:
        import cv2

        cv2.imshow(self.title, cv2.cvtColor(frame_rgb, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        while key == ord(" "):  # paused until Space again (or quit)
            key = cv2.waitKey(0) & 0xFF
            if key == ord(" "):
                break
        return "quit" if key in (27, ord("q")) else None

    def close(self) -> None:
        import cv2

        cv2.destroyAllWindows()


def _photo_data(frame_rgb: np.ndarray) -> bytes:
    """A binary PPM: what Tk's PhotoImage reads without Pillow."""
    h, w = frame_rgb.shape[:2]
    return f"P6 {w} {h} 255 ".encode() + np.ascontiguousarray(frame_rgb, np.uint8).tobytes()


class TkWindow(Window):
    """The same window with the standard library's Tk, for opencv-python-headless installs.

    One Tk root for the run; the frame is a PhotoImage on a Canvas (1:1 pixels, so a drag maps
    to frame pixels directly); keys are bound on the root.
    """

    def __init__(self) -> None:
        import tkinter

        self.tk = tkinter
        self.root = tkinter.Tk()
        self.root.title(self.title)
        self.canvas = tkinter.Canvas(self.root, highlightthickness=0, cursor="crosshair")
        self.canvas.pack()
        self.photo = None
        self.keys: list[str] = []
        self.closed = False
        self.root.bind("<Key>", lambda e: self.keys.append(e.keysym))
        self.root.protocol("WM_DELETE_WINDOW", self._on_close)

    def _on_close(self) -> None:
        self.closed = True
        self.keys.append("Escape")

    def _draw(self, frame_rgb: np.ndarray) -> None:
        h, w = frame_rgb.shape[:2]
        self.photo = self.tk.PhotoImage(data=_photo_data(frame_rgb), format="PPM")
        self.canvas.config(width=w, height=h)
        self.canvas.delete("all")
        self.canvas.create_image(0, 0, image=self.photo, anchor="nw")

    def select_box(self, frame_rgb: np.ndarray) -> Optional[np.ndarray]:
        self.root.title(f"{self.title}: drag the target's box, Enter to accept, Esc to cancel")
        self._draw(frame_rgb)
        drag: dict = {}

        def press(e):
            drag["p0"] = (e.x, e.y)
            self.canvas.delete("box")

        def move(e):
            if "p0" in drag:
                self.canvas.delete("box")
                self.canvas.create_rectangle(*drag["p0"], e.x, e.y, outline="#ffd000", width=2, tags="box")

        def release(e):
            if "p0" in drag:
                (x0, y0), (x1, y1) = drag.pop("p0"), (e.x, e.y)
                drag["box"] = (min(x0, x1), min(y0, y1), abs(x1 - x0), abs(y1 - y0))

        self.canvas.bind("<ButtonPress-1>", press)
        self.canvas.bind("<B1-Motion>", move)
        self.canvas.bind("<ButtonRelease-1>", release)
        self.keys.clear()
        try:
            while True:
                self.root.update()
                while self.keys:
                    key = self.keys.pop(0)
                    if key in ("Escape", "c"):
                        return None
                    if key in ("Return", "KP_Enter", "space") and drag.get("box"):
                        x, y, w, h = drag["box"]
                        return np.array([x, y, w, h], float) if w > 1 and h > 1 else None
                time.sleep(0.01)
        finally:
            for event in ("<ButtonPress-1>", "<B1-Motion>", "<ButtonRelease-1>"):
                self.canvas.unbind(event)
            self.root.title(self.title)
            self.root.update()  # the title changes now, not when the first tracked frame is shown

    def show(self, frame_rgb: np.ndarray) -> Optional[str]:
        self._draw(frame_rgb)
        self.root.update()
        paused = False
        while True:
            while self.keys:
                key = self.keys.pop(0)
                if key in ("Escape", "q"):
                    return "quit"
                if key == "space":
                    paused = not paused
                    self.root.title(f"{self.title} (paused: Space to resume)" if paused else self.title)
            if not paused:
                return None
            time.sleep(0.02)
            self.root.update()

    def close(self) -> None:
        with_errors = (self.tk.TclError,)
        try:
            self.root.destroy()
        except with_errors:
            pass


def open_window(backend: str = "auto") -> Window:
    """`OpenCVWindow` where OpenCV has HighGUI, else `TkWindow`; `DemoError` saying why not."""
    if not has_display():
        raise DemoError("no display: $DISPLAY is not set (use --no-display, or run under X / Xvfb)")
    if backend in ("auto", "opencv") and opencv_has_gui():
        return OpenCVWindow()
    if backend == "opencv":
        raise DemoError("this OpenCV has no window support (opencv-python-headless): install opencv-python")
    try:
        return TkWindow()
    except ImportError as exc:
        raise DemoError("no window toolkit: OpenCV is headless and tkinter is missing "
                        "(install opencv-python, or python3-tk)") from exc
    except Exception as exc:  # tkinter.TclError: the display cannot be opened
        raise DemoError(f"cannot open a window on the display: {exc}") from exc
