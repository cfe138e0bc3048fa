"""The MVLM tracker: one network pass per frame, margin confidence, memory gate (docs/tracker.md).

`MVLMTracker._step` is the paper's Algorithm 1 for one frame:

    view_t   = local crop around state_{t−1} (side ⌈√(wh)·search_factor⌉)  if mode_t = local
             = whole frame                                                   if mode_t = global
    maps     = net(view_t, templates, text_emb)        (text encoded once per initialize)
    b, δcorr, δcls, κmem, κmvlm, S_t, î = confidence.frame_confidence(...)
    state_t  = clip_box(map_back(b_î))
    mode_t+1 = local if S_t ≠ ∅ else global

with each reference-compat fix behind its switch (`resolve_switches`, docs/tracker.md "compat"):
exact_pooling and aligned_memory in the confidence, letterbox_global, global_window and
exact_mapping in the view, hysteresis in the gate.

The CPU-benchmark heuristics beyond the paper live in `mvlm.track.extensions.ExtendedTracker`,
which overrides the three extension points marked below (`_new_shot`, `_global_answer`,
`_local_box`); `create_tracker` builds it when a setting asks for one of them.

Starting:

* box + language (`bbox` preset, or any preset given a box): `initialize` stores the box,
  the first `track` call is local in template mode, global in template-free mode (as released).
* language only (template-free, no box): `initialize` runs a GLOBAL pass on the first frame
  itself and returns that prediction as frame 1's result (`TrackResult.mode == "global"`);
  nothing from the ground truth is used.

`initialize` always returns a `TrackResult` for the first frame: the prediction (language
only), or the given box echoed with `mode == "init"` and `kappa None`.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import torch

from mvlm.config import ConfigError, ModelConfig, TrackerConfig, model_config, resolve_switches
from mvlm.data.crops import to_network_input
from mvlm.track import confidence as conf
from mvlm.track import mapping
from mvlm.track.spec import (TrackerError, TrackerSpec, check_tracker_config, checkpoint_path, complete_description,
                             tracker_overrides)

__all__ = ["BuiltTracker", "MVLMTracker", "TrackResult", "TrackerError", "TrackerSpec", "build_tracker",
           "create_tracker", "resolve_switches", "tracker_overrides"]


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
    timings: dict[str, float] = field(default_factory=dict)  # milliseconds

    def to_json(self) -> dict[str, Any]:
        return {
            "frame": self.frame_index, "box": [float(v) for v in self.box],
            "raw_box": [float(v) for v in self.raw_box], "kappa": self.kappa, "mode": self.mode,
            "next_mode": self.next_mode, "n_selected": self.n_selected, "top1": self.top1,
            "l_top1": None if math.isnan(self.l_top1) else self.l_top1,
            "template_updated": self.template_updated, "contested": self.contested, "shot_cut": self.shot_cut,
            "refined": self.refined, "timings": self.timings,
        }


@contextlib.contextmanager
def one_intra_op_thread():
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
class PassTiming:
    """Seconds one frame spent building views, in the network and in the confidence."""

    view_s: float
    network_s: float
    confidence_s: float

    def plus(self, other: "PassTiming") -> "PassTiming":
        return PassTiming(self.view_s + other.view_s, self.network_s + other.network_s,
                          self.confidence_s + other.confidence_s)


@dataclass
class Answer:
    """A view's reading of the frame: the view, its confidence (batch of one) and what it cost.
    `mode` is the mode the frame is reported in (a refined global answer stays "global")."""

    mode: str
    view: mapping.SearchView
    c: conf.Confidence
    timing: PassTiming
    contested: bool = False
    refined: bool = False

    @property
    def kappa(self) -> float:
        """κmvlm of the candidate the selection chose."""
        return float(self.c.kappa_mvlm[0, int(self.c.top1[0])])


class MVLMTracker:
    """`initialize(frame, text, box=None) -> TrackResult`, then `track(frame) -> TrackResult`.

    The paper's tracker with the reference-compat switches; settings of the extension layer
    need `mvlm.track.extensions.ExtendedTracker` (`create_tracker` picks the class).

    `net` follows the MVLMNet contract: `net(search (B,6,S,S), templates list|None,
    text_emb (B,L,D))` returns feat_x (B,F·F,D), score_map (B,1,F,F), size_map and
    offset_map (B,2,F,F); `net.encode_text(list[str]) -> (1,L,D)`.
    """

    def __init__(self, net: torch.nn.Module, model_cfg: ModelConfig, tracker_cfg: TrackerConfig,
                 device: str | torch.device = "cpu") -> None:
        check_tracker_config(tracker_cfg, model_cfg)
        if type(self) is MVLMTracker:
            from mvlm.track.extensions import extensions_in_use

            used = extensions_in_use(tracker_cfg)
            if used:
                raise ConfigError(f"tracker settings {used} are extensions beyond the paper: build the tracker with "
                                  "mvlm.track.tracker.create_tracker (mvlm.track.extensions.ExtendedTracker)")
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

    def _reset(self) -> None:
        self.state: Optional[np.ndarray] = None
        self.mode = "global"
        self.memory: Optional[torch.Tensor] = None
        self.memory_view: Optional[mapping.ViewTransform] = None
        self.empty_run = 0
        self.frame_index = 0
        self.templates: list[torch.Tensor] = []
        self.ready = False

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
        self._new_shot(frame)  # the first frame starts the first shot
        if box is None:
            if not self.cfg.template_free:
                raise TrackerError(f"tracker preset {self.cfg.preset!r} uses templates: initialize needs a box")
            return self._step(frame, "global")
        box = _check_box(box, frame)
        self.state = box
        if not self.cfg.template_free:
            with one_intra_op_thread():
                first = self._template(frame, box)
            self.templates = [first] * self.cfg.num_templates
        self.mode = self._first_mode()
        return TrackResult(box=box.copy(), kappa=None, mode="init", next_mode=self.mode, n_selected=0,
                           frame_index=0, raw_box=box.copy())

    @torch.inference_mode()
    def track(self, frame: np.ndarray) -> TrackResult:
        """Track one more frame (RGB uint8): returns the chosen box and what led to it."""
        frame = _check_frame(frame)
        if not self.ready:
            raise TrackerError("track() called before initialize()")
        self.frame_index += 1
        if self._new_shot(frame):  # extension point: a new shot goes global with a fresh memory
            self.memory, self.memory_view = None, None
            return self._step(frame, "global", shot_cut=True)
        return self._step(frame, self.mode)

    # ----------------------------------------------------------------------------------------
    # Algorithm 1, one frame

    def _step(self, frame: np.ndarray, mode: str, shot_cut: bool = False) -> TrackResult:
        """One frame in `mode` (the gate's choice at the previous frame)."""
        # view -> network -> candidates -> δcorr, δcls, memory -> κ -> S_t, top-1
        if mode == "local":
            answer = self._passes(frame, [("local", None)])[0]
        else:
            answer = self._global_answer(frame, contest=not shot_cut)
        # top-1 box, state, memory, next mode from S_t, template update
        return self._commit(frame, answer, shot_cut)

    def _passes(self, frame: np.ndarray, requests: list[tuple[str, Optional[np.ndarray]]]) -> list[Answer]:
        """One view per (mode, around) -> network (all views as one batch) -> each view's
        confidence with its own window and memory. A local view is centred on `around`
        (default: the last state). The batch's times are booked on the first answer."""
        t0 = time.perf_counter()
        with one_intra_op_thread():
            views = [self._view(frame, mode, around) for mode, around in requests]
            search = to_network_input([v.image for v in views]).to(self.device)
        t1 = time.perf_counter()
        n = len(views)
        out = self._network(search)
        t2 = time.perf_counter()
        confidences = []
        with one_intra_op_thread():
            for row, ((mode, _), view) in enumerate(zip(requests, views)):
                row_out = out if n == 1 else {k: v[row:row + 1] for k, v in out.items()}
                window = self.window if self._windowed(mode) else None
                confidences.append(conf.frame_confidence(row_out, self.text_vec, window,
                                                         self._memory_prev(view), self.params))
        timings = [PassTiming(t1 - t0, t2 - t1, time.perf_counter() - t2)] + [PassTiming(0.0, 0.0, 0.0)] * (n - 1)
        return [Answer(mode, view, c, timing)
                for (mode, _), view, c, timing in zip(requests, views, confidences, timings)]

    def _view(self, frame: np.ndarray, mode: str, around: Optional[np.ndarray] = None) -> mapping.SearchView:
        """The local crop around `around` (default: the last state), or the whole frame; cut
        with the released geometry unless `exact_mapping` (or `letterbox_global`) is on."""
        exact = self.switches["exact_mapping"]
        if mode == "local":
            box = self.state if around is None else around
            if exact:
                return mapping.exact_crop(frame, box, self.cfg.search_factor, self.search_size)
            return mapping.reference_crop(frame, box, self.cfg.search_factor, self.search_size)
        if exact or self.switches["letterbox_global"]:
            return mapping.exact_global(frame, self.search_size, self.switches["letterbox_global"])
        return mapping.reference_global(frame, self.search_size)

    def _network(self, search: torch.Tensor) -> dict[str, torch.Tensor]:
        """The network on a batch of views, with the templates (box mode) and the sentence."""
        n = search.shape[0]
        templates = self.templates if (self.uses_templates and self.templates) else None
        if templates is not None and n > 1:
            templates = [t.expand(n, -1, -1, -1) for t in templates]
        return self.net(search, templates, self.text_emb if n == 1 else self.text_emb.expand(n, -1, -1))

    def _windowed(self, mode: str) -> bool:
        """Hann window on the scores of a local view, and of a global one unless `global_window` is off."""
        return self.cfg.window and (mode == "local" or self.switches["global_window"])

    def _memory_prev(self, view: mapping.SearchView) -> Optional[torch.Tensor]:
        """κmem_{t−1} on this view's grid: as stored (reference), or resampled into the view
        (`aligned_memory`)."""
        if self.memory is None or not self.cfg.memory:
            return None
        if self.switches["aligned_memory"] and self.memory_view is not None and self.memory_view != view.transform:
            return mapping.realign_memory(self.memory, self.memory_view, view.transform, self.grid)
        return self.memory

    def _commit(self, frame: np.ndarray, answer: Answer, shot_cut: bool = False) -> TrackResult:
        """The chosen candidate's box becomes the state; κmem is kept for the next frame, and the
        gate picks the next mode from S_t."""
        c, view = answer.c, answer.view
        t_select = time.perf_counter()
        with one_intra_op_thread():
            top1 = int(c.top1[0])
            kappa, l_top1 = c.kappa_mvlm[0, top1].item(), c.l[0, top1].item()
            n_selected = int(c.in_s[0].sum())
            t3 = time.perf_counter()
            raw = self._map_back(view, c)
            frame_h, frame_w = frame.shape[:2]
            if np.isfinite(raw).all():
                box = self._local_box(raw) if answer.mode == "local" else raw  # extension point: size damping
                box = mapping.clip_box(box, frame_h, frame_w, self.cfg.clip_margin)
            else:  # the network produced NaN/inf: keep the last state (or the whole frame), go global
                box = self.state.copy() if self.state is not None else np.array([0.0, 0.0, frame_w, frame_h])
                n_selected = 0
            self.state = box
            self.memory, self.memory_view = c.kappa_mem, view.transform
            self.last_confidence = c
            self.mode = self._next_mode(n_selected)
            updated = self._maybe_update_template(frame, l_top1)
        t4 = time.perf_counter()
        timing = answer.timing
        timings = {"view_ms": timing.view_s * 1e3, "network_ms": timing.network_s * 1e3,
                   "confidence_ms": (timing.confidence_s + t3 - t_select) * 1e3,
                   "mapping_ms": (t4 - t3) * 1e3}
        timings["total_ms"] = sum(timings.values())
        return TrackResult(box=box, kappa=kappa, mode=answer.mode, next_mode=self.mode, n_selected=n_selected,
                           frame_index=self.frame_index, raw_box=raw, top1=top1, l_top1=l_top1,
                           template_updated=updated, contested=answer.contested, shot_cut=shot_cut,
                           refined=answer.refined, timings=timings)

    def _map_back(self, view: mapping.SearchView, c: conf.Confidence) -> np.ndarray:
        """Image box x,y,w,h (before clipping) of the chosen candidate of `view`."""
        box_norm = c.boxes[0, int(c.top1[0])]
        if view.reference:
            return mapping.map_back_reference(box_norm, view, view.around, self.search_size)
        return mapping.map_back_exact(box_norm, view)

    def _first_mode(self) -> str:
        """Mode of the first tracked frame after a box start: local with templates, global without."""
        if self.cfg.gate == "always_global":
            return "global"
        if self.cfg.gate == "local_only":
            return "local"
        return "global" if self.cfg.template_free else "local"

    def _next_mode(self, n_selected: int) -> str:
        """LOCAL when S_t ≠ ∅; GLOBAL after `hysteresis` consecutive empty S (1 = released)."""
        if self.cfg.gate == "local_only":
            return "local"
        if self.cfg.gate == "always_global":
            return "global"
        self.empty_run = 0 if n_selected > 0 else self.empty_run + 1
        return "global" if self.empty_run >= self.switches["hysteresis"] else "local"

    def _template(self, frame: np.ndarray, box: np.ndarray) -> torch.Tensor:
        if self.switches["exact_mapping"]:
            view = mapping.exact_crop(frame, box, self.cfg.template_factor, self.template_size)
        else:
            view = mapping.reference_crop(frame, box, self.cfg.template_factor, self.template_size)
        return to_network_input(view.image).to(self.device)

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

    # ----------------------------------------------------------------------------------------
    # extension points (the paper's behaviour here; mvlm.track.extensions overrides them)

    def _new_shot(self, frame: np.ndarray) -> bool:
        """Whether `frame` starts a new shot that the gate must not follow locally: never."""
        return False

    def _global_answer(self, frame: np.ndarray, contest: bool = True) -> Answer:
        """The global view's answer: one whole-frame pass. (`contest`: whether the extension
        layer may weigh it against a local pass.)"""
        return self._passes(frame, [("global", None)])[0]

    def _local_box(self, raw: np.ndarray) -> np.ndarray:
        """The box a local step reports, from the mapped-back prediction `raw`: `raw` itself."""
        return raw


def create_tracker(net: torch.nn.Module, model_cfg: ModelConfig, tracker_cfg: TrackerConfig,
                   device: str | torch.device = "cpu") -> MVLMTracker:
    """The paper's `MVLMTracker`, or `ExtendedTracker` when a setting of the extension layer is on."""
    from mvlm.track.extensions import ExtendedTracker, extensions_in_use

    cls = ExtendedTracker if extensions_in_use(tracker_cfg) else MVLMTracker
    return cls(net, model_cfg, tracker_cfg, device=device)


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
    tracker = create_tracker(net, described.model_cfg, described.tracker_cfg, device=spec.device)
    return BuiltTracker(tracker, not spec.checkpoint, described.info)
