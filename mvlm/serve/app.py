"""`mvlm serve`: a FastAPI app to load a model and a video, then track a sentence live.

One `TrackingSession` per server: the tracker runs in a background thread; the browser polls
``/api/status`` and ``/api/history`` and fetches the latest annotated JPEG (or ``/api/stream``
MJPEG). Differences from the reference web UI (docs/paper-notes.md §6.2) on purpose: loopback by default, no
CORS, upload names sanitized and size-limited (413), server paths confined to allowed roots,
each model load builds its configs from scratch (no process-wide config), a sample video
comes from the embedded generator, relative URLs only (no hard-coded port), the first frame
is tracked, and changing the sentence re-initializes on the frame on screen.

Hardening (docs/reliability.md, "Server"): `RequestGuard` answers only allow-listed Host names
(DNS rebinding), refuses state-changing requests from foreign origins or without the
`X-MVLM-Client` header / a JSON body (CSRF), caps request bodies; uploads must be
``application/octet-stream``; frame folders are confined after symlinks; no Swagger CDN page;
temporary files go at shutdown; every refusal is a 4xx with a JSON ``detail``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlsplit

import numpy as np
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.datastructures import Headers

from mvlm.demo import (MJPEG_MEDIA_TYPE, VIDEO_SUFFIXES, DemoError, FpsMeter, FrameBroadcaster,
                       FrameResult, FrameSource, LoadedTracker, PathRefused, annotate, check_box,
                       check_text, encode_jpeg, initialize, load_tracker, mjpeg_parts, open_path,
                       status_of, track)
from mvlm.serve.fetch import FetchError, fetch_to_file

STATIC_DIR = Path(__file__).resolve().parent / "static"
HISTORY_LIMIT = 200_000  # entries kept for the timeline (a long video at 30 FPS is ~2 h)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
CLIENT_HEADER = "X-MVLM-Client"  # a custom header: a cross-site form or simple fetch cannot send it
UPLOAD_PATH = "/api/video/upload"
UPLOAD_TYPE = "application/octet-stream"
WEBCAM_START_PATH = "/api/video/webcam"  # the first camera frame (JPEG/PNG bytes): a webcam source
WEBCAM_FRAME_PATH = "/api/webcam/frame"  # each further camera frame while that source is loaded
WEBCAM_FRAME_LIMIT = 4 * 1024 * 1024  # one encoded camera frame
WEBCAM_MAX_SIDE = 2048
WEBCAM_IDLE_S = 20.0  # a webcam run ends when the page sends no frame for this long
WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".tar")
FILE_LIST_LIMIT = 500
SEED_MAX = 2**32 - 1  # numpy's SeedSequence and torch.manual_seed both accept 0..2**32-1
log = logging.getLogger("mvlm.serve")


class _Stopped(Exception):
    """The tracking thread was asked to stop."""


@dataclass
class ServeConfig:
    """Where server-side paths may point and how large an upload may be."""

    data_root: Path = Path(".")
    extra_roots: list[Path] = field(default_factory=list)
    upload_limit_mb: float = 200.0
    work_dir: Optional[Path] = None  # uploads and samples; a fresh temp folder when None
    allowed_hosts: tuple[str, ...] = LOOPBACK_HOSTS  # Host header names answered
    json_limit_bytes: int = 64 * 1024  # every request body but an upload or a camera frame
    url_time_limit_s: float = 60.0  # a video fetched from a URL: whole transfer

    @property
    def upload_limit_bytes(self) -> int:
        return int(self.upload_limit_mb * 1024 * 1024)


# --------------------------------------------------------------------------------------------
# request bodies


class ModelRequest(BaseModel):
    preset: str = "tiny"
    checkpoint: Optional[str] = None
    tracker_preset: Optional[str] = None
    compat: str = "corrected"
    device: str = "cpu"
    seed: int = Field(0, ge=0, le=SEED_MAX)
    # how to load a checkpoint without a config inside (released .pth.tar; docs/weights.md)
    checkpoint_preset: Optional[str] = None
    mode: Optional[str] = None  # tf | bbox
    text_weights: Optional[str] = None  # CLIP text file (server-side path under the data root)
    random_init: bool = False  # allow a random CLIP tower


class PathRequest(BaseModel):
    path: str


class SampleRequest(BaseModel):
    frames: int = 60
    width: int = 256
    height: int = 192
    seed: int = Field(0, ge=0, le=SEED_MAX)


class StartRequest(BaseModel):
    text: str
    box: Optional[list[float]] = None
    realtime: bool = False  # pace at the video's frame rate instead of as fast as possible


class SentenceRequest(BaseModel):
    text: Optional[str] = None  # None or empty: keep the current sentence (a drawn box alone switches)
    box: Optional[list[float]] = None


class UrlRequest(BaseModel):
    url: str = Field(..., max_length=2048)


# --------------------------------------------------------------------------------------------
# paths and names


class PathPolicy:
    """Server-side paths must resolve (symlinks followed) inside one of the allowed roots."""

    def __init__(self, roots: list[Path]):
        self.roots = [Path(r).resolve() for r in roots]

    def resolve(self, user_path: str, what: str = "path") -> Path:
        if not isinstance(user_path, str) or not user_path.strip() or "\x00" in user_path:
            raise HTTPException(400, f"{what}: empty or invalid")
        raw = Path(user_path.strip())
        if ".." in raw.parts:
            raise HTTPException(403, f"{what} {user_path!r}: '..' is not allowed")
        path = (raw if raw.is_absolute() else self.roots[0] / raw).resolve()
        if not any(path.is_relative_to(root) for root in self.roots):
            raise HTTPException(403, f"{what} {user_path!r}: outside the allowed roots")
        if not path.exists():
            raise HTTPException(404, f"{what} {user_path!r}: not found")
        return path


def safe_upload_name(name: str) -> str:
    """Last path component, characters outside ``[A-Za-z0-9._-]`` replaced, a unique prefix.

    The extension must be a known video type so the saved file can never be, say, ``.html``.
    """
    base = (name or "").replace("\\", "/").split("/")[-1]
    base = re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip(".")[-100:]
    suffix = Path(base).suffix.lower()
    if not base or suffix not in VIDEO_SUFFIXES:
        raise HTTPException(400, f"upload {name!r}: expected a video file ({', '.join(VIDEO_SUFFIXES)})")
    return f"{uuid.uuid4().hex[:8]}_{base}"


def make_sample(out_dir: Path, frames: int, width: int, height: int, seed: int) -> tuple[Path, str]:
    """One sequence from the embedded benchmark generator -> (sequence folder, its sentence)."""
    from mvlm.data import synthetic

    try:
        plan = synthetic.plan_sequence(seed, 0, width, height, frames)
        synthetic.write_sequence(plan, Path(out_dir))
    except synthetic.SynthError as exc:
        raise DemoError(f"sample: {exc}") from exc
    return Path(out_dir) / plan.target.shape / plan.name, plan.sentence


# --------------------------------------------------------------------------------------------
# request guard: Host allow-list, same origin, body size


def host_name(value: Optional[str]) -> Optional[str]:
    """``"LocalHost.:8080"`` -> ``"localhost"``, ``"[::1]:80"`` -> ``"::1"``; None when malformed."""
    if not value or any(c.isspace() or c in "/?#@\\" for c in value):
        return None
    try:
        parts = urlsplit("//" + value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None
    return (parts.hostname or "").rstrip(".") or None


def _netloc(scheme: str, value: str) -> Optional[tuple[str, int]]:
    """(host, port) with the scheme's default port filled in; None when malformed."""
    try:
        parts = urlsplit(f"{scheme}://{value}")
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").rstrip(".")
    default = {"http": 80, "https": 443}.get(scheme)
    return (host, port or default) if host and (port or default) else None


def origin_problem(headers: Headers) -> Optional[str]:
    """Why a state-changing request may not come from this page; None when it may.

    Origin (else Referer), when sent, must name this server (the Host it was sent to, which
    the allow-list already vetted). Independently, the request must carry `CLIENT_HEADER` or a
    non-form content type (JSON, or octet-stream for uploads): a cross-site page can send
    neither without a CORS preflight, which this server never grants.
    """
    own = _netloc("http", headers.get("host", ""))
    for name in ("origin", "referer"):
        sent = headers.get(name)
        if sent is None:
            continue
        try:
            parts = urlsplit(sent.strip())
        except ValueError:
            return f"{name} header is malformed"
        if parts.scheme not in ("http", "https"):
            return f"{name} {sent!r:.80} is not this server"
        if own is None or _netloc("http", parts.netloc) != own:
            return f"cross-site request refused: {name} {sent!r:.80} is not this server"
        break  # Origin decides when present; Referer only stands in for a missing Origin
    media = headers.get("content-type", "").split(";")[0].strip().lower()
    if not headers.get(CLIENT_HEADER) and media not in ("application/json", UPLOAD_TYPE):
        return (f"state-changing request refused: send the {CLIENT_HEADER} header "
                "or a JSON body (the page does)")
    return None


class RequestGuard:
    """ASGI middleware run before routing: Host allow-list, same-origin rule for anything but
    GET/HEAD/OPTIONS, and a body limit for every request but an upload (which streams to disk
    under its own limit). Refusals are JSON ``{"detail": ...}`` with 400/403/413."""

    SAFE = ("GET", "HEAD", "OPTIONS")

    def __init__(self, app: Any, allowed_hosts: tuple[str, ...], body_limit: int,
                 path_limits: Optional[dict[str, int]] = None):
        self.app = app
        self.allowed = {h.strip().lower().strip("[]").rstrip(".") for h in allowed_hosts}
        self.default_limit = body_limit
        self.path_limits = dict(path_limits or {})  # raw-body endpoints with their own cap

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        name = host_name(headers.get("host"))
        if name is None or name not in self.allowed:
            host = headers.get("host")
            return await self._refuse(scope, receive, send, 400,
                                      f"Host {host!r:.80} is not served here (allowed: "
                                      f"{', '.join(sorted(self.allowed))}; see --allow-host)")
        method = scope["method"]
        if method not in self.SAFE:
            problem = origin_problem(headers)
            if problem:
                return await self._refuse(scope, receive, send, 403, problem)
        if scope["path"] == UPLOAD_PATH:
            return await self.app(scope, receive, send)
        limit = self.path_limits.get(scope["path"], self.default_limit)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await self._refuse(scope, receive, send, 413,
                                      f"request body over the limit of {limit} bytes")
        if method in self.SAFE and declared is None:
            return await self.app(scope, receive, send)
        # read the (small) body here so a chunked one cannot grow past the limit either
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                return await self._refuse(scope, receive, send, 413,
                                          f"request body over the limit of {limit} bytes")
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(scope: dict, receive: Any, send: Any, status: int, detail: str) -> None:
        await JSONResponse({"detail": detail}, status_code=status)(scope, receive, send)


# --------------------------------------------------------------------------------------------
# the browser's camera as a frame source


def decode_image(data: bytes, what: str = "camera frame") -> np.ndarray:
    """JPEG/PNG/WebP bytes -> RGB uint8 (H, W, 3); `DemoError` for anything else or too large."""
    import cv2

    if not data:
        raise DemoError(f"{what}: empty body")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None or bgr.ndim != 3:
        raise DemoError(f"{what}: not a JPEG, PNG or WebP image")
    h, w = bgr.shape[:2]
    if max(h, w) > WEBCAM_MAX_SIDE or min(h, w) < 16:
        raise DemoError(f"{what}: {w}x{h} outside 16..{WEBCAM_MAX_SIDE} pixels a side")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class WebcamSource(FrameSource):
    """Frames the page's getUserMedia camera posts (`WEBCAM_FRAME_PATH`). A run starts on the
    snapshot the box was drawn on (`first`), then takes the newest posted frame each time (older
    ones are dropped: the tracker never falls behind the camera). `end_runs` ends the frame
    iterators of running tracks (stop); a run also ends after `WEBCAM_IDLE_S` without a frame."""

    def __init__(self, first: np.ndarray, idle_s: float = WEBCAM_IDLE_S):
        self.name = "webcam (browser camera)"
        self.fps = 30.0
        self.frame_count = -1
        self.first = first
        self.shape = first.shape
        self.idle_s = idle_s
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._generation = 0
        self.received = 0

    def push(self, frame: np.ndarray) -> None:
        if frame.shape != self.shape:
            raise DemoError(f"camera frame {frame.shape[1]}x{frame.shape[0]} differs from the first "
                            f"frame's {self.shape[1]}x{self.shape[0]}: load the webcam again")
        while True:
            try:
                self._queue.put_nowait(frame)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()  # drop the oldest
        self.received += 1

    def end_runs(self) -> None:
        self._generation += 1

    def first_frame(self) -> np.ndarray:
        return self.first

    def frames(self):
        generation = self._generation
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()  # frames from before this run are stale
        yield self.first
        idle_since = time.monotonic()
        while generation == self._generation:
            try:
                frame = self._queue.get(timeout=0.1)
            except queue.Empty:
                if time.monotonic() - idle_since > self.idle_s:
                    return
                continue
            idle_since = time.monotonic()
            yield frame


# --------------------------------------------------------------------------------------------
# the session


class TrackingSession:
    """Model, video and tracking thread of one server. Public methods are thread-safe."""

    def __init__(self, cfg: ServeConfig):
        self.cfg = cfg
        self.owns_work_dir = cfg.work_dir is None  # a temp folder of ours: removed at close()
        self.work_dir = Path(cfg.work_dir or tempfile.mkdtemp(prefix="mvlm-serve-"))
        self.upload_dir = self.work_dir / "uploads"
        self.sample_dir = self.work_dir / "samples"
        for d in (self.upload_dir, self.sample_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.paths = PathPolicy([cfg.data_root, *cfg.extra_roots, self.upload_dir, self.sample_dir])
        self.broadcaster = FrameBroadcaster()
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self.loaded: Optional[LoadedTracker] = None
        self.source: Optional[FrameSource] = None
        self.video_info: Optional[dict] = None
        self.first_jpeg: Optional[bytes] = None
        self.suggested_text = ""
        self.state = "idle"  # idle | running | paused | finished | stopped | error
        self.error: Optional[str] = None
        self.text = ""
        self.last: Optional[FrameResult] = None
        self.fps = 0.0
        self.run_id = 0
        self.history: list[dict] = []
        self._pending: Optional[tuple[str, Optional[np.ndarray]]] = None
        self._paused = False
        self._parked = False  # the thread waits between frames while paused
        self._stop = False
        self._thread: Optional[threading.Thread] = None
        self._owned: Optional[Path] = None  # the upload or sample behind the loaded video

    # ---- loading ------------------------------------------------------------------------

    def _require_idle(self) -> None:
        if self.state in ("running", "paused"):
            raise HTTPException(409, "tracking is running: stop it first")

    def load_model(self, req: ModelRequest) -> dict:
        with self._lock:
            self._require_idle()
        checkpoint = str(self.paths.resolve(req.checkpoint, "checkpoint")) if req.checkpoint else None
        text_weights = str(self.paths.resolve(req.text_weights, "text weights")) if req.text_weights else None
        try:
            loaded = load_tracker(checkpoint, preset=req.preset, tracker_preset=req.tracker_preset,
                                  compat=req.compat, device=req.device, seed=req.seed,
                                  checkpoint_preset=req.checkpoint_preset, mode=req.mode,
                                  text_weights=text_weights, random_init=req.random_init)
        except DemoError as exc:
            raise HTTPException(400, str(exc)) from exc
        except Exception as exc:  # a broken checkpoint must not kill the server
            raise HTTPException(400, f"cannot load model: {exc}") from exc
        with self._lock:
            self._require_idle()
            self.loaded = loaded
        return self.model_info()

    def model_info(self) -> Optional[dict]:
        m = self.loaded
        if m is None:
            return None
        return {"description": m.description, "random_init": m.random_init, "preset": m.model_preset,
                "tracker_preset": m.tracker_preset, "compat": m.compat, "device": m.device}

    def load_video(self, path: Optional[Path], label: str, suggested_text: str = "", owned: Optional[Path] = None,
                   source: Optional[FrameSource] = None) -> dict:
        """Open `path` (frames confined to the allowed roots), or take a ready `source` (webcam).
        `owned`: a file or folder this session wrote for it (upload, sample, URL download); it is
        deleted when another video replaces it."""
        try:
            if source is None:
                source = open_path(path, roots=self.paths.roots)
            first = source.first_frame()
        except PathRefused as exc:
            raise HTTPException(403, str(exc)) from exc
        except DemoError as exc:
            raise HTTPException(400, str(exc)) from exc
        with self._lock:
            self._require_idle()
            previous, self._owned = self._owned, owned
            self.source = source
            self.first_jpeg = encode_jpeg(first, 90)
            h, w = first.shape[:2]
            self.video_info = {"name": label, "frame_count": source.frame_count, "fps": round(source.fps, 3),
                               "width": w, "height": h, "live": isinstance(source, WebcamSource)}
            self.suggested_text = suggested_text
            self.state, self.error, self.last = "idle", None, None
        if previous is not None and previous != owned:
            _remove(previous)
        return {**self.video_info, "suggested_text": suggested_text}

    def push_webcam_frame(self, frame: np.ndarray) -> dict:
        with self._lock:
            source = self.source
        if not isinstance(source, WebcamSource):
            raise HTTPException(409, "no webcam source is loaded: load the webcam first")
        try:
            source.push(frame)
        except DemoError as exc:
            raise HTTPException(400, str(exc)) from exc
        return {"received": source.received, "state": self.state}

    def close(self) -> None:
        """Stop tracking; delete this session's uploads and samples (and its temp folder)."""
        self.stop()
        self.broadcaster.close()
        with self._lock:
            owned, self._owned, self.source = self._owned, None, None
        if self.owns_work_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)
        elif owned is not None:
            _remove(owned)

    # ---- tracking control -----------------------------------------------------------------

    def start(self, req: StartRequest) -> dict:
        with self._lock:
            self._require_idle()
            if self.loaded is None:
                raise HTTPException(409, "load a model first")
            if self.source is None:
                raise HTTPException(409, "load a video first")
            try:
                text = check_text(req.text)
                box = None if req.box is None else check_box(
                    req.box, "box", (self.video_info["height"], self.video_info["width"]))
            except DemoError as exc:
                raise HTTPException(400, str(exc)) from exc
            self.run_id += 1
            self.history, self.last, self.error, self.fps = [], None, None, 0.0
            self.text, self._pending, self._paused, self._stop = text, None, False, False
            self.state = "running"
            self._thread = threading.Thread(
                target=self._loop, args=(self.source, self.loaded.tracker, text, box, req.realtime, self.run_id),
                name="mvlm-tracking", daemon=True)
            self._thread.start()
        return self.status()

    def pause(self) -> dict:
        with self._lock:
            if self.state != "running":
                raise HTTPException(409, f"cannot pause: tracking is {self.state}")
            self._paused, self.state = True, "paused"
            self._wake.notify_all()
            # return once the frame in flight is recorded: after this, nothing advances
            self._wake.wait_for(lambda: self._parked or self.state != "paused", timeout=60)
        return self.status()

    def resume(self) -> dict:
        with self._lock:
            if self.state != "paused":
                raise HTTPException(409, f"cannot resume: tracking is {self.state}")
            self._paused, self.state = False, "running"
            self._wake.notify_all()
        return self.status()

    def stop(self) -> dict:
        with self._lock:
            thread = self._thread
            self._stop = True
            self._wake.notify_all()
            if isinstance(self.source, WebcamSource):
                self.source.end_runs()  # the thread may be waiting for the next camera frame
        if thread is not None:
            thread.join(timeout=30)
        with self._lock:
            if self.state in ("running", "paused"):
                self.state = "stopped"
        return self.status()

    def switch_sentence(self, req: SentenceRequest) -> dict:
        with self._lock:
            if self.state not in ("running", "paused"):
                raise HTTPException(409, f"cannot change the sentence: tracking is {self.state}")
            try:
                keep = req.text is None or not req.text.strip()
                if keep and req.box is None:
                    raise DemoError("give a new sentence, a new box, or both")
                text = self.text if keep else check_text(req.text)
                box = None if req.box is None else check_box(
                    req.box, "box", (self.video_info["height"], self.video_info["width"]))
            except DemoError as exc:
                raise HTTPException(400, str(exc)) from exc
            self._pending = (text, box)
            self._wake.notify_all()
        return {"queued": True, "text": text, "box": None if box is None else [float(v) for v in box]}

    # ---- the thread -----------------------------------------------------------------------

    def _record(self, frame: np.ndarray, res: FrameResult, text: str, meter: FpsMeter, event: Optional[str],
                run_id: int) -> None:
        fps = meter.tick()
        jpeg = encode_jpeg(annotate(frame, res, text, fps))
        with self._lock:
            if run_id != self.run_id:
                return
            self.last, self.fps, self.text = res, fps, text
            if len(self.history) < HISTORY_LIMIT:
                kappa = res.kappa if res.kappa is not None and np.isfinite(res.kappa) else None
                self.history.append({"frame": res.index, "kappa": kappa, "mode": res.mode, "event": event})
        self.broadcaster.publish(jpeg, status_of(res, text, fps, self.video_info["frame_count"]))

    def _between_frames(self, due: float) -> Optional[tuple[str, Optional[np.ndarray]]]:
        """Wait for pacing / while paused; return a queued sentence switch; `_Stopped` on stop."""
        with self._lock:
            while True:
                if self._stop:
                    raise _Stopped
                if self._pending is not None:
                    pending, self._pending = self._pending, None
                    return pending
                now = time.perf_counter()
                if not self._paused and now >= due:
                    self._parked = False
                    return None
                if self._paused and not self._parked:
                    self._parked = True
                    self._wake.notify_all()
                self._wake.wait(timeout=0.05 if self._paused else min(0.05, due - now))

    def _loop(self, source: FrameSource, tracker: Any, text: str, box: Optional[np.ndarray],
              realtime: bool, run_id: int) -> None:
        meter = FpsMeter()
        period = 1.0 / source.fps if realtime else 0.0
        due = time.perf_counter()
        frames = source.frames()
        outcome, error = "finished", None
        try:
            for index, frame in enumerate(frames):
                if index == 0:
                    self._record(frame, initialize(tracker, frame, text, box, 0), text, meter, "init", run_id)
                else:
                    self._record(frame, track(tracker, frame, index), text, meter, None, run_id)
                # never "catch up" with a burst after a pause or a slow frame
                due = max(due + period, time.perf_counter()) if period else due
                # sentence switches re-initialize on this (displayed) frame, even while paused
                while (switch := self._between_frames(due)) is not None:
                    text, new_box = switch
                    res = initialize(tracker, frame, text, new_box, index)
                    self._record(frame, res, text, meter, "switch", run_id)
        except _Stopped:
            outcome = "stopped"
        except Exception as exc:  # surfaced in /api/status instead of dying silently
            outcome, error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            frames.close()  # releases the VideoCapture now, not at garbage collection
            with self._lock:
                self._parked = False
                if run_id == self.run_id and self.state in ("running", "paused"):
                    if outcome == "finished" and self._stop:
                        outcome = "stopped"  # a live source ended because stop was asked
                    self.state, self.error = outcome, error
                self._wake.notify_all()

    # ---- views ----------------------------------------------------------------------------

    def status(self) -> dict:
        with self._lock:
            last = self.last
            out = {
                "state": self.state,
                "error": self.error,
                "run": self.run_id,
                "model": self.model_info(),
                "video": self.video_info,
                "suggested_text": self.suggested_text,
                "text": self.text,
                "frame": None if last is None else last.index,
                "frames_done": len(self.history),
                "total_frames": None if self.video_info is None else self.video_info["frame_count"],
                "fps": round(self.fps, 2),
                "history_len": len(self.history),
            }
            if last is not None:
                s = status_of(last, self.text, self.fps, out["total_frames"] or -1)
                out.update(box=s["box"], kappa=s["kappa"], mode=s["mode"], next_mode=s["next_mode"])
            else:
                out.update(box=None, kappa=None, mode=None, next_mode=None)
            return out

    def history_since(self, since: int) -> dict:
        with self._lock:
            since = max(0, since)
            return {"run": self.run_id, "items": self.history[since:], "next": len(self.history)}


def _remove(path: Path) -> None:
    """Delete a file or folder this server wrote; a failure is logged, never raised."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)


# --------------------------------------------------------------------------------------------
# the app


async def _save_upload(request: Request, dest: Path, limit: int) -> int:
    """Stream the request body to `dest`; 413 (and no file left) past `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {int(declared)} bytes exceeds the limit of {limit} bytes")
    size = 0
    try:
        with open(dest, "wb") as fh:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPException(413, f"upload exceeds the limit of {limit} bytes")
                fh.write(chunk)
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    if size == 0:
        dest.unlink(missing_ok=True)
        raise HTTPException(400, "upload is empty")
    return size


def create_app(cfg: ServeConfig | None = None) -> FastAPI:
    """The UI app; `app.state.session` is its `TrackingSession`."""
    cfg = cfg or ServeConfig()
    session = TrackingSession(cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        try:
            yield
        finally:  # SIGTERM / Ctrl-C under uvicorn end here too
            session.close()

    # no /docs or /redoc: FastAPI's pages load Swagger/ReDoc from a CDN (/openapi.json stays)
    app = FastAPI(title="mvlm serve", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(RequestGuard, allowed_hosts=tuple(cfg.allowed_hosts), body_limit=cfg.json_limit_bytes,
                       path_limits={WEBCAM_START_PATH: WEBCAM_FRAME_LIMIT, WEBCAM_FRAME_PATH: WEBCAM_FRAME_LIMIT})
    app.state.session = session
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/api/status")
    def status() -> dict:
        return session.status()

    @app.get("/api/history")
    def history(since: int = 0) -> dict:
        return session.history_since(since)

    @app.get("/api/presets")
    def presets() -> dict:
        from mvlm.config import MODEL_PRESETS, TRACKER_PRESETS

        return {"model": list(MODEL_PRESETS), "tracker": list(TRACKER_PRESETS),
                "compat": ["corrected", "reference"], "upload_limit_mb": cfg.upload_limit_mb,
                "data_root": str(Path(cfg.data_root).resolve())}

    @app.get("/api/checkpoints")
    def checkpoints() -> dict:
        from mvlm.model.loader import list_checkpoints

        return {"checkpoints": list_checkpoints(Path(cfg.data_root) / "models")}

    @app.post("/api/model")
    def load_model(req: ModelRequest) -> dict:
        return session.load_model(req)

    @app.post("/api/video/path")
    def video_path(req: PathRequest) -> dict:
        path = session.paths.resolve(req.path, "video path")
        return session.load_video(path, req.path)

    @app.post(UPLOAD_PATH)
    async def video_upload(request: Request, filename: str = Query(..., max_length=255)) -> dict:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != UPLOAD_TYPE:  # form types (text/plain, multipart) are what a foreign page can send
            raise HTTPException(415, f"upload the raw video bytes as Content-Type: {UPLOAD_TYPE} "
                                     f"(got {media or 'none'!r})")
        name = safe_upload_name(filename)
        dest = session.upload_dir / name
        size = await _save_upload(request, dest, cfg.upload_limit_bytes)
        try:
            info = session.load_video(dest, name, owned=dest)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return {**info, "bytes": size}

    @app.post("/api/video/url")
    def video_url(req: UrlRequest) -> dict:
        from urllib.parse import urlsplit as _split

        with session._lock:
            session._require_idle()
        tail = _split(req.url.strip()).path.rsplit("/", 1)[-1] if "://" in req.url else ""
        try:
            name = safe_upload_name(tail)
        except HTTPException:
            name = safe_upload_name("video.mp4")  # no video extension in the URL: let OpenCV sniff it
        dest = session.upload_dir / name
        try:
            got = fetch_to_file(req.url, dest, cfg.upload_limit_bytes, time_limit=cfg.url_time_limit_s)
        except FetchError as exc:
            raise HTTPException(exc.status, str(exc)) from exc
        try:
            info = session.load_video(dest, got["url"], owned=dest)
        except BaseException:
            dest.unlink(missing_ok=True)
            raise
        return {**info, "bytes": got["bytes"]}

    async def _image_body(request: Request) -> np.ndarray:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != UPLOAD_TYPE:
            raise HTTPException(415, f"send the encoded camera frame as Content-Type: {UPLOAD_TYPE} "
                                     f"(got {media or 'none'!r})")
        try:
            return decode_image(await request.body())
        except DemoError as exc:
            raise HTTPException(400, str(exc)) from exc

    @app.post(WEBCAM_START_PATH)
    async def video_webcam(request: Request) -> dict:
        first = await _image_body(request)
        return session.load_video(None, "webcam (browser camera)", source=WebcamSource(first))

    @app.post(WEBCAM_FRAME_PATH)
    async def webcam_frame(request: Request) -> dict:
        return session.push_webcam_frame(await _image_body(request))

    @app.get("/api/files")
    def files(kind: str = "weights") -> dict:
        """Files under the data root a model field can name (text weights, checkpoints)."""
        if kind not in ("weights",):
            raise HTTPException(400, "kind: expected 'weights'")
        root = Path(cfg.data_root).resolve()
        found: list[str] = []
        for folder, dirs, names in os.walk(root):  # symlinked folders are not entered
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(names):
                path = Path(folder) / name
                if name.lower().endswith(WEIGHT_SUFFIXES) and path.resolve().is_relative_to(root):
                    found.append(str(path.relative_to(root)))
                if len(found) >= FILE_LIST_LIMIT:
                    return {"files": found, "truncated": True}
        return {"files": found, "truncated": False}

    @app.post("/api/video/sample")
    def video_sample(req: SampleRequest) -> dict:
        if not (2 <= req.frames <= 2000 and 32 <= req.width <= 1920 and 32 <= req.height <= 1080):
            raise HTTPException(400, "sample: frames 2..2000, width 32..1920, height 32..1080")
        out = session.sample_dir / f"seed{req.seed}_{req.frames}x{req.width}x{req.height}_{uuid.uuid4().hex[:6]}"
        try:
            seq_dir, sentence = make_sample(out, req.frames, req.width, req.height, req.seed)
            return session.load_video(seq_dir, f"sample {seq_dir.name} (seed {req.seed})", sentence, owned=out)
        except BaseException as exc:
            _remove(out)
            if isinstance(exc, (ImportError, AttributeError)):
                raise HTTPException(501, f"the sample generator is not available: {exc}") from exc
            raise

    @app.get("/api/video/first_frame")
    def first_frame() -> Response:
        if session.first_jpeg is None:
            raise HTTPException(404, "no video loaded")
        return Response(session.first_jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.post("/api/track/start")
    def start(req: StartRequest) -> dict:
        return session.start(req)

    @app.post("/api/track/pause")
    def pause() -> dict:
        return session.pause()

    @app.post("/api/track/resume")
    def resume() -> dict:
        return session.resume()

    @app.post("/api/track/stop")
    def stop() -> dict:
        return session.stop()

    @app.post("/api/track/sentence")
    def sentence(req: SentenceRequest) -> dict:
        return session.switch_sentence(req)

    @app.get("/api/frame.jpg")
    def frame() -> Response:
        seq, jpeg = session.broadcaster.latest()
        if jpeg is None:
            raise HTTPException(404, "no tracked frame yet")
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store", "X-Frame-Seq": str(seq)})

    @app.get("/api/stream")
    def stream() -> StreamingResponse:
        return StreamingResponse(mjpeg_parts(session.broadcaster), media_type=MJPEG_MEDIA_TYPE)

    @app.exception_handler(ValueError)  # DemoError and other bad-input errors
    async def bad_input(request: Request, exc: ValueError) -> JSONResponse:
        return JSONResponse({"detail": str(exc) or type(exc).__name__}, status_code=400)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        # a bug, not bad input: the traceback goes to the server log, a one-line JSON to the client
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"},
                            status_code=500)

    return app
