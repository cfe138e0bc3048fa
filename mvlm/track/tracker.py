"""The MVLM tracker: one network pass per frame, margin confidence, memory gate (digest §3).

State machine per frame t:

    view_t   = local crop around state_{t−1} (side ⌈√(wh)·search_factor⌉)  if mode_t = local
             = whole frame                                                   if mode_t = global
    maps     = net(view_t, templates, text_emb)        (text encoded once per initialize)
    κ, î     = confidence.frame_confidence(...)        (digest §2)
    state_t  = clip_box(map_back(b_î))
    mode_t+1 = local if S_t ≠ ∅ else global  (global only after `hysteresis` empty frames)

Beyond the reference (each off by default): `global_zoom` tiles the global view (and
`target_scale_tiles` tiles it at the scale of the last box's local crop), `size_damping`
damps the size in local steps, `global_vs_local` runs the local crop beside the global pass
on a global frame and keeps the view with the more confident chosen candidate, and
`shot_cut_threshold` sends a frame that starts a new shot (`mvlm.track.shots`) global, with no
contest and a cleared memory: the last box belongs to the previous shot. `refine_global` follows
every global pass with a local pass around the box it chose, in the same frame, and lets that
pass answer; `contest_margin` makes the contest's global side win only by that much κ.
`exit_watch` treats a box at the frame border as a target that may be leaving: the next frames
go global (contested), with the memory cleared, so a target re-entering elsewhere can be found.

Starting:

* box + language (`bbox` preset, or any preset given a box): `initialize` stores the box,
  the first `track` call is local in template mode, global in template-free mode (as released).
* language only (template-free, no box): `initialize` runs a GLOBAL pass on the first frame
  itself and returns that prediction as frame 1's result (`TrackResult.mode == "global"`);
  nothing from the ground truth is used.

`initialize` always returns a `TrackResult` for the first frame: the prediction (language
only), or the given box echoed with `mode == "init"` and `kappa None`.

Compatibility: `compat: reference` keeps every quirk (parity with the released tracker to the
tolerances of docs/tracker.md, tests/test_parity_tracker.py); `corrected` turns on each fix of `resolve_switches`, each of
which can be set alone in the TrackerConfig.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from mvlm.config import ModelConfig, TrackerConfig, model_config
from mvlm.data.crops import crop_side, tile_views, to_network_input
from mvlm.track import confidence as conf
from mvlm.track import mapping
from mvlm.track.shots import shot_thumbnail, thumbnail_correlation
from mvlm.track.spec import (TrackerError, TrackerSpec, check_tracker_config, checkpoint_path, complete_description,
                             resolve_switches, tracker_overrides)

# `exit_watch`: a box edge this close to the frame edge (px) counts as reaching the border
EXIT_BORDER_PX = 2.0


@dataclass
class TrackResult:
    """One frame's outcome. Boxes are x, y, w, h in image pixels."""

    box: np.ndarray  # (4,) after clip_box
    kappa: Optional[float]  # κmvlm of the chosen candidate (None when the box was given)
    mode: str  # "local" | "global" | "init"
    next_mode: str  # mode of the next frame
    n_selected: int  # |S_t|
    frame_index: int  # 0 = the initialization frame
    raw_box: np.ndarray  # (4,) before clip_box
    top1: int = -1  # chosen cell i = gy·F + gx
    l_top1: float = float("nan")  # windowed centre score of the chosen cell
    template_updated: bool = False
    contested: bool = False  # a global frame that also ran the local pass (`global_vs_local`)
    shot_cut: bool = False  # a frame taken as a new shot (`shot_cut_threshold`): global, no contest
    refined: bool = False  # a global answer re-read by a local pass around it (`refine_global`)
    exit_watch: bool = False  # the next frame goes global because the box was at the border (`exit_watch`)
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds

    def to_json(self) -> dict[str, Any]:
        return {
            "frame": self.frame_index, "box": [float(v) for v in self.box],
            "raw_box": [float(v) for v in self.raw_box], "kappa": self.kappa, "mode": self.mode,
            "next_mode": self.next_mode, "n_selected": self.n_selected, "top1": self.top1,
            "l_top1": None if math.isnan(self.l_top1) else self.l_top1,
            "template_updated": self.template_updated, "contested": self.contested, "shot_cut": self.shot_cut,
            "refined": self.refined, "exit_watch": self.exit_watch,
            "timings": self.timings,
        }


@contextlib.contextmanager
def _one_intra_op_thread():
    """Run the block with one torch intra-op thread, then restore the count.

    Everything around the network (views, confidence, mapping) is made of tensors of a few
    thousand elements: splitting them over threads gains nothing, while a parallel region waits
    for every thread, which on a loaded 2-core machine can cost a scheduler time slice (a
    64×64 bmm measured 16 ms median at 2 threads vs 16 µs at 1). Results are unchanged.
    """
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _check_frame(frame: Any) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        desc = f"{type(frame).__name__} {getattr(frame, 'shape', '')} {getattr(frame, 'dtype', '')}"
        raise TrackerError(f"frame must be an RGB uint8 array (H, W, 3), got {desc.strip()}")
    if frame.shape[0] < 2 or frame.shape[1] < 2:
        raise TrackerError(f"frame of size {frame.shape[1]}x{frame.shape[0]} is too small to track in")
    return frame


def _check_box(box: Any, frame: np.ndarray) -> np.ndarray:
    b = np.asarray(box, dtype=np.float64).reshape(-1)
    if b.size != 4 or not np.isfinite(b).all() or b[2] <= 0 or b[3] <= 0:
        raise TrackerError(f"init box must be 4 finite numbers x,y,w,h with w,h > 0, got {list(np.ravel(box))}")
    h, w = frame.shape[:2]
    if b[0] >= w or b[1] >= h or b[0] + b[2] <= 0 or b[1] + b[3] <= 0:
        raise TrackerError(f"init box {b.tolist()} lies outside the {w}x{h} frame")
    return b


@dataclass(frozen=True)
class _PassTiming:
    """Seconds one frame spent building views, in the network and in the confidence."""

    view_s: float
    network_s: float
    confidence_s: float

    def plus(self, other: "_PassTiming") -> "_PassTiming":
        return _PassTiming(self.view_s + other.view_s, self.network_s + other.network_s,
                           self.confidence_s + other.confidence_s)


def _top1_kappa(c: conf.Confidence) -> float:
    """κmvlm of the candidate the selection chose (batch row 0)."""
    return float(c.kappa_mvlm[0, int(c.top1[0])])


class MVLMTracker:
    """`initialize(frame, text, box=None) -> TrackResult`, then `track(frame) -> TrackResult`.

    `net` follows the MVLMNet contract: `net(search (1,6,S,S), templates list|None,
    text_emb (1,L,D))` returns feat_x (1,F·F,D), score_map (1,1,F,F), size_map and
    offset_map (1,2,F,F); `net.encode_text(list[str]) -> (1,L,D)`.
    """

    def __init__(self, net: torch.nn.Module, model_cfg: ModelConfig, tracker_cfg: TrackerConfig,
                 device: str | torch.device = "cpu") -> None:
        check_tracker_config(tracker_cfg, model_cfg)
        self.net = net
        self.model_cfg = model_cfg
        self.cfg = tracker_cfg
        self.device = torch.device(device)
        self.switches = resolve_switches(tracker_cfg)
        self.search_size = model_cfg.encoder.search_size
        self.template_size = model_cfg.encoder.template_size
        self.grid = model_cfg.feat_size
        # templates enter the network only when it was built to use them
        self.uses_templates = not model_cfg.template_free
        self.window = conf.hann_window(self.grid, self.device).reshape(1, 1, self.grid, self.grid)
        self.params = conf.ConfidenceParams(
            alpha=tracker_cfg.alpha, tau=tracker_cfg.tau, omega=tracker_cfg.omega, lam=tracker_cfg.lam,
            psi_out=tracker_cfg.psi_out, memory=tracker_cfg.memory,
            exact_pooling=self.switches["exact_pooling"],
        )
        self._text_cache: dict[str, torch.Tensor] = {}
        self.last_confidence: Optional[conf.Confidence] = None
        self._reset()

    # ----------------------------------------------------------------------------------------
    # state

    def _reset(self) -> None:
        self.state: Optional[np.ndarray] = None
        self.mode = "global"
        self.memory: Optional[torch.Tensor] = None
        self.memory_view: Optional[mapping.ViewTransform] = None
        self.empty_run = 0
        self.frame_index = 0
        self.templates: list[torch.Tensor] = []
        self.ready = False
        self.thumbnail: Optional[np.ndarray] = None
        self.exit_watch_left = 0

    @torch.inference_mode()
    def encode_text(self, text: str) -> torch.Tensor:
        """Text embedding (1, L, D) of a sentence, cached per sentence."""
        if not isinstance(text, str) or not text.strip():
            raise TrackerError("the target sentence is empty: the tracker needs a description of the target")
        key = " ".join(text.split())
        if key not in self._text_cache:
            emb = self.net.encode_text([key])
            self._text_cache = {key: emb.to(self.device)}  # one sentence per sequence is the norm
        return self._text_cache[key]

    def replace_text_embedding(self, text_emb: torch.Tensor) -> None:
        """Use `text_emb` (1, L, D) from now on instead of the encoded sentence (diagnostics)."""
        self.text_emb = text_emb.to(self.device)
        self.text_vec = conf.text_vector(self.text_emb)

    # ----------------------------------------------------------------------------------------
    # public API

    @torch.inference_mode()
    def initialize(self, frame: np.ndarray, text: str, box: Any = None) -> TrackResult:
        """Start a sequence on `frame` (RGB uint8) with a sentence and an optional box x,y,w,h px.

        Without a box (template-free only) the first frame is localized by a GLOBAL pass and
        that prediction is returned; with a box, the box is returned as `mode "init"`.
        """
        frame = _check_frame(frame)
        self._reset()
        self.replace_text_embedding(self.encode_text(text))
        self.ready = True
        self._shot_cut(frame)
        if box is None:
            if not self.cfg.template_free:
                raise TrackerError(f"tracker preset {self.cfg.preset!r} uses templates: initialize needs a box")
            return self._step(frame, "global")
        box = _check_box(box, frame)
        self.state = box
        if not self.cfg.template_free:
            with _one_intra_op_thread():
                first = self._template(frame, box)
            self.templates = [first] * self.cfg.num_templates
        self.mode = self._gate_start()
        return TrackResult(box=box.copy(), kappa=None, mode="init", next_mode=self.mode, n_selected=0,
                           frame_index=0, raw_box=box.copy())

    @torch.inference_mode()
    def track(self, frame: np.ndarray) -> TrackResult:
        """Track one more frame (RGB uint8): returns the chosen box and what led to it."""
        frame = _check_frame(frame)
        if not self.ready:
            raise TrackerError("track() called before initialize()")
        self.frame_index += 1
        if self._shot_cut(frame) and self.cfg.gate == "mvlm":
            self.memory, self.memory_view = None, None
            view, c, timing, refined = self._global_answer(frame)
            return self._finish_step(frame, "global", view, c, timing, shot_cut=True, refined=refined)
        return self._step(frame, self.mode)

    # ----------------------------------------------------------------------------------------
    # one frame

    def _shot_cut(self, frame: np.ndarray) -> bool:
        """Whether `frame` starts a new shot (`shot_cut_threshold`); remembers its thumbnail."""
        if self.cfg.shot_cut_threshold is None:
            return False
        thumb = shot_thumbnail(frame)
        previous, self.thumbnail = self.thumbnail, thumb
        return previous is not None and thumbnail_correlation(previous, thumb) < self.cfg.shot_cut_threshold

    def _gate_start(self) -> str:
        if self.cfg.gate == "always_global":
            return "global"
        if self.cfg.gate == "local_only":
            return "local"
        return "global" if self.cfg.template_free else "local"

    def _view(self, frame: np.ndarray, mode: str, around: Optional[np.ndarray] = None) -> mapping.SearchView:
        """The view of `mode`; a local one is centred on `around` (default: the last state)."""
        exact = self.switches["exact_mapping"]
        if mode == "local":
            box = self.state if around is None else around
            if exact:
                return mapping.exact_crop(frame, box, self.cfg.search_factor, self.search_size)
            return mapping.reference_crop(frame, box, self.cfg.search_factor, self.search_size)
        if exact or self.switches["letterbox_global"]:
            return mapping.exact_global(frame, self.search_size, self.switches["letterbox_global"])
        return mapping.reference_global(frame, self.search_size)

    def _template(self, frame: np.ndarray, box: np.ndarray) -> torch.Tensor:
        if self.switches["exact_mapping"]:
            view = mapping.exact_crop(frame, box, self.cfg.template_factor, self.template_size)
        else:
            view = mapping.reference_crop(frame, box, self.cfg.template_factor, self.template_size)
        return to_network_input(view.image).to(self.device)

    def _memory_prev(self, view: mapping.SearchView) -> Optional[torch.Tensor]:
        if self.memory is None or not self.cfg.memory:
            return None
        if self.switches["aligned_memory"] and self.memory_view is not None and self.memory_view != view.transform:
            return mapping.realign_memory(self.memory, self.memory_view, view.transform, self.grid)
        return self.memory

    def _step(self, frame: np.ndarray, mode: str) -> TrackResult:
        if mode == "global" and self.cfg.global_vs_local and self.cfg.gate == "mvlm" and self.state is not None:
            return self._contested_step(frame)
        if mode == "global":
            view, c, timing, refined = self._global_answer(frame)
            return self._finish_step(frame, mode, view, c, timing, refined=refined)
        view, c, timing = self._pass(frame, mode)
        return self._finish_step(frame, mode, view, c, timing)

    def _pass(self, frame: np.ndarray, mode: str,
              around: Optional[np.ndarray] = None) -> tuple[mapping.SearchView, conf.Confidence, _PassTiming]:
        """One network pass of `mode` (the tiled one for a global pass with `global_zoom` or
        `target_scale_tiles`)."""
        zoom = self._tile_zoom(frame) if mode == "global" else 0.0
        if zoom > 0:
            return self._tiled_pass(frame, zoom)
        return self._single_pass(frame, mode, around)

    def _tile_zoom(self, frame: np.ndarray) -> float:
        """Zoom of the tiled global pass, 0 = one whole-frame view. With `target_scale_tiles` and
        a last box, windows have the side of the local crop around that box, but never more than
        the frame's longer side."""
        if self.cfg.target_scale_tiles and self.state is not None:
            side = min(crop_side(self.state, self.cfg.search_factor), max(frame.shape[:2]))
            return self.search_size / side
        return self.cfg.global_zoom

    def _global_answer(self, frame: np.ndarray) -> tuple[mapping.SearchView, conf.Confidence, _PassTiming, bool]:
        """The global pass, and with `refine_global` the local pass around the box it chose,
        which then answers for the frame (the last flag says whether it did)."""
        return self._refined(frame, *self._pass(frame, "global"))

    def _refined(self, frame: np.ndarray, view: mapping.SearchView, c: conf.Confidence,
                 timing: _PassTiming) -> tuple[mapping.SearchView, conf.Confidence, _PassTiming, bool]:
        """`refine_global`: the local pass around the box a global pass chose answers instead."""
        if not self.cfg.refine_global:
            return view, c, timing, False
        box = self._map_back(view, c)
        if not np.isfinite(box).all():
            return view, c, timing, False  # _finish_step handles a non-finite answer
        around = mapping.clip_box(box, frame.shape[0], frame.shape[1], self.cfg.clip_margin)
        local_view, local_c, local_timing = self._pass(frame, "local", around)
        return local_view, local_c, timing.plus(local_timing), True

    def _contested_step(self, frame: np.ndarray) -> TrackResult:
        """A frame the MVLM gate sent global, with `global_vs_local`: the global pass and a local
        pass around the last box both run (one network batch of two when the global view is a
        single one: ~15 % less tracking time, outputs equal to float noise), and the one whose
        chosen candidate has the higher κmvlm
        answers (the global one only when higher by more than `contest_margin`), so a
        re-localization has to be more confident than staying where the target was.
        The gate ablations (`local_only`, `always_global`) never contest."""
        zoom = self._tile_zoom(frame)
        if zoom > 0:
            g_pass = self._tiled_pass(frame, zoom)
            l_view, l_c, l_timing = self._single_pass(frame, "local")
        else:  # the two views do not depend on each other: one network batch of two
            g_pass, (l_view, l_c, l_timing) = self._single_passes(frame, [("global", None), ("local", None)])
        g_view, g_c, g_timing, refined = self._refined(frame, *g_pass)
        timing = g_timing.plus(l_timing)
        if _top1_kappa(g_c) > _top1_kappa(l_c) + self.cfg.contest_margin:
            return self._finish_step(frame, "global", g_view, g_c, timing, contested=True, refined=refined)
        return self._finish_step(frame, "local", l_view, l_c, timing, contested=True)

    def _single_pass(self, frame: np.ndarray, mode: str,
                     around: Optional[np.ndarray] = None) -> tuple[mapping.SearchView, conf.Confidence, _PassTiming]:
        return self._single_passes(frame, [(mode, around)])[0]

    def _single_passes(self, frame: np.ndarray, requests: list[tuple[str, Optional[np.ndarray]]]
                       ) -> list[tuple[mapping.SearchView, conf.Confidence, _PassTiming]]:
        """One single-view pass per (mode, around), run through the network as one batch; each
        view keeps its own window and memory. The batch's times are booked on the first pass."""
        t0 = time.perf_counter()
        with _one_intra_op_thread():
            views = [self._view(frame, mode, around) for mode, around in requests]
            search = to_network_input([v.image for v in views]).to(self.device)
        t1 = time.perf_counter()
        n = len(views)
        templates = self.templates if (self.uses_templates and self.templates) else None
        if templates is not None and n > 1:
            templates = [t.expand(n, -1, -1, -1) for t in templates]
        out = self.net(search, templates, self.text_emb if n == 1 else self.text_emb.expand(n, -1, -1))
        t2 = time.perf_counter()
        confidences = []
        with _one_intra_op_thread():
            for row, ((mode, _), view) in enumerate(zip(requests, views)):
                row_out = out if n == 1 else {k: v[row:row + 1] for k, v in out.items()}
                use_window = self.cfg.window and (mode == "local" or self.switches["global_window"])
                confidences.append(conf.frame_confidence(row_out, self.text_vec, self.window if use_window else None,
                                                         self._memory_prev(view), self.params))
        timings = [_PassTiming(t1 - t0, t2 - t1, time.perf_counter() - t2)] + [_PassTiming(0.0, 0.0, 0.0)] * (n - 1)
        return list(zip(views, confidences, timings))

    def _tiled_pass(self, frame: np.ndarray, zoom: float) -> tuple[mapping.SearchView, conf.Confidence, _PassTiming]:
        """Global pass over overlapping windows (`crops.tile_views`) in one batch; the window
        whose top candidate has the highest κmvlm (or score l, `tile_select`) is this frame's view."""
        t0 = time.perf_counter()
        with _one_intra_op_thread():
            views = [mapping.SearchView(image, "global", t, t.scale_x, frame.shape[:2], reference=False)
                     for image, t in tile_views(frame, self.search_size, zoom)]
            search = to_network_input([v.image for v in views]).to(self.device)
        t1 = time.perf_counter()
        n = len(views)
        templates = ([t.expand(n, -1, -1, -1) for t in self.templates]
                     if (self.uses_templates and self.templates) else None)
        out = self.net(search, templates, self.text_emb.expand(n, -1, -1))
        t2 = time.perf_counter()
        with _one_intra_op_thread():
            window = self.window if (self.cfg.window and self.switches["global_window"]) else None
            memories = [self._memory_prev(v) for v in views]
            memory = None if memories[0] is None else torch.cat(memories)
            c = conf.frame_confidence(out, self.text_vec, window, memory, self.params)
            ranked = c.l if self.cfg.tile_select == "score" else c.kappa_mvlm
            best = int(ranked.gather(1, c.top1[:, None])[:, 0].argmax())
            c = conf.confidence_row(c, best)
        return views[best], c, _PassTiming(t1 - t0, t2 - t1, time.perf_counter() - t2)

    def _finish_step(self, frame: np.ndarray, mode: str, view: mapping.SearchView, c: conf.Confidence,
                     timing: _PassTiming, contested: bool = False, shot_cut: bool = False,
                     refined: bool = False) -> TrackResult:
        t_select = time.perf_counter()
        with _one_intra_op_thread():
            top1 = int(c.top1[0])
            kappa, l_top1 = c.kappa_mvlm[0, top1].item(), c.l[0, top1].item()
            n_selected = int(c.in_s[0].sum())
            t3 = time.perf_counter()
            raw = self._map_back(view, c)
            frame_h, frame_w = frame.shape[:2]
            if np.isfinite(raw).all():
                damped = self._damp_size(raw) if mode == "local" else raw
                box = mapping.clip_box(damped, frame_h, frame_w, self.cfg.clip_margin)
            else:  # the network produced NaN/inf: keep the last state (or the whole frame), go global
                box = self.state.copy() if self.state is not None else np.array([0.0, 0.0, frame_w, frame_h])
                n_selected = 0
            self.state = box
            self.memory, self.memory_view = c.kappa_mem, view.transform
            self.last_confidence = c
            self.mode = self._next_mode(n_selected)
            watching = self._watch_for_exit(box, frame_w, frame_h)
            if watching:
                self.mode, self.memory, self.memory_view = "global", None, None
            updated = self._maybe_update_template(frame, l_top1)
        t4 = time.perf_counter()
        timings = {"view_ms": timing.view_s * 1e3, "network_ms": timing.network_s * 1e3,
                   "confidence_ms": (timing.confidence_s + t3 - t_select) * 1e3,
                   "mapping_ms": (t4 - t3) * 1e3}
        timings["total_ms"] = sum(timings.values())
        return TrackResult(box=box, kappa=kappa, mode=mode, next_mode=self.mode, n_selected=n_selected,
                           frame_index=self.frame_index, raw_box=raw, top1=top1, l_top1=l_top1,
                           template_updated=updated, contested=contested, shot_cut=shot_cut, refined=refined,
                           exit_watch=watching,
                           timings=timings)

    def _map_back(self, view: mapping.SearchView, c: conf.Confidence) -> np.ndarray:
        """Image box x,y,w,h (before clipping) of the chosen candidate of `view`."""
        box_norm = c.boxes[0, int(c.top1[0])]
        if view.reference:
            return mapping.map_back_reference(box_norm, view, view.around, self.search_size)
        return mapping.map_back_exact(box_norm, view)

    def _damp_size(self, raw: np.ndarray) -> np.ndarray:
        """The predicted box with its width and height moved `size_damping` of the way (in log
        space) from the previous state's; centre unchanged."""
        beta = self.cfg.size_damping
        if beta >= 1.0 or self.state is None or raw[2] <= 0 or raw[3] <= 0:
            return raw
        cx, cy = raw[0] + raw[2] / 2, raw[1] + raw[3] / 2
        w = self.state[2] ** (1 - beta) * raw[2] ** beta
        h = self.state[3] ** (1 - beta) * raw[3] ** beta
        return np.array([cx - w / 2, cy - h / 2, w, h], dtype=raw.dtype)

    def _next_mode(self, n_selected: int) -> str:
        """LOCAL when S_t ≠ ∅; GLOBAL after `hysteresis` consecutive empty S (1 = released)."""
        if self.cfg.gate == "local_only":
            return "local"
        if self.cfg.gate == "always_global":
            return "global"
        self.empty_run = 0 if n_selected > 0 else self.empty_run + 1
        return "global" if self.empty_run >= self.switches["hysteresis"] else "local"

    def _watch_for_exit(self, box: np.ndarray, frame_w: int, frame_h: int) -> bool:
        """`exit_watch`: whether the next frame goes global because the box reached the frame
        border (within EXIT_BORDER_PX) in this frame or in one of the last `exit_watch` − 1."""
        if self.cfg.exit_watch <= 0 or self.cfg.gate != "mvlm":
            return False
        x, y, w, h = (float(v) for v in box)
        m = EXIT_BORDER_PX
        if x <= m or y <= m or x + w >= frame_w - m or y + h >= frame_h - m:
            self.exit_watch_left = self.cfg.exit_watch
        elif self.exit_watch_left > 0:
            self.exit_watch_left -= 1
        return self.exit_watch_left > 0

    def _maybe_update_template(self, frame: np.ndarray, l_top1: float) -> bool:
        """Template mode: every `update_interval` frames, if l_î > threshold, refresh the newest
        slot (slot 0 keeps the initial template)."""
        cfg = self.cfg
        if cfg.template_free or cfg.num_templates < 2 or cfg.update_interval <= 0:
            return False
        if self.frame_index % cfg.update_interval != 0 or not l_top1 > cfg.update_threshold:
            return False
        self.templates.append(self._template(frame, self.state))
        if len(self.templates) > cfg.num_templates:
            del self.templates[1]
        return True


# --------------------------------------------------------------------------------------------
# building a tracker from a checkpoint or a random-init network


@dataclass
class BuiltTracker:
    tracker: MVLMTracker
    random_init: bool
    info: dict[str, Any]  # JSON-ready description (written into every meta file)


def build_tracker(spec: TrackerSpec) -> BuiltTracker:
    """A ready `MVLMTracker` for `spec` (checkpoint, or a seeded random-init `model_preset` net);
    its `info` is `describe_tracker(spec).info`."""
    if spec.checkpoint:
        from mvlm.model.checkpoint import load_model

        path = checkpoint_path(spec)
        model_values = dict(spec.checkpoint_model or {})
        preset = model_values.pop("preset", None)
        net, meta = load_model(path, preset=preset, overrides=model_values or None,  # fp16 CLIP as clip.load on CUDA
                               text_half=spec.compat == "reference" and str(spec.device).startswith("cuda"))
        model_cfg = getattr(net, "cfg", None)
        if model_cfg is None:
            raise TrackerError(f"{path}: the loaded network carries no model config")
        described = complete_description(spec, model_cfg, dict(meta or {}))
    else:
        from mvlm.model.net import build_model

        described = complete_description(spec, model_config(preset=spec.model_preset), {})
        torch.manual_seed(spec.seed)
        net = build_model(described.model_cfg)
    net = net.to(spec.device).eval()
    tracker = MVLMTracker(net, described.model_cfg, described.tracker_cfg, device=spec.device)
    return BuiltTracker(tracker, not spec.checkpoint, described.info)
