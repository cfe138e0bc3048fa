"""The extension layer: CPU-benchmark heuristics beyond the paper (docs/tracker.md, "Extensions").

`ExtendedTracker` is `MVLMTracker` with its three extension points filled in; every heuristic is
off unless its setting says otherwise, and with all of them off the tracker is the paper's.

* `_local_box` — `size_damping` β: a local step keeps the predicted centre but moves width and
  height only β of the way from the previous state, in log space.
* `_global_answer` — what a global frame runs instead of one whole-frame pass:
  - `target_scale_tiles`: once there is a last box, the frame is tiled with windows of that box's
    local-crop side, all in one batch; `tile_select` picks the window that answers;
  - `refine_global`: a local pass around the box the global pass chose answers instead;
  - `global_vs_local`: a frame the MVLM gate sent global also runs the local pass around the last
    box, and the answer whose chosen candidate has the higher κmvlm wins (the contest).
* `_new_shot` — `shot_cut_threshold`: a frame whose thumbnail correlates below it with the
  previous frame's starts a new shot (`mvlm.track.shots`): global, no contest, memory cleared.

The gate ablations keep their meaning: `local_only` never goes global, `always_global` never
contests, and neither reacts to shot cuts.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Optional

import numpy as np
import torch

from mvlm.config import TrackerConfig
from mvlm.data.crops import crop_side, tile_views, to_network_input
from mvlm.track import confidence as conf
from mvlm.track import mapping
from mvlm.track.shots import shot_thumbnail, thumbnail_correlation
from mvlm.track.tracker import Answer, MVLMTracker, PassTiming, one_intra_op_thread

# every extension setting with the value that turns it off (the paper's behaviour)
EXTENSIONS_OFF = {"size_damping": 1.0, "global_vs_local": False, "refine_global": False,
                  "shot_cut_threshold": None, "target_scale_tiles": False}


def extensions_in_use(cfg: TrackerConfig) -> list[str]:
    """Names of the extension settings `cfg` turns on (`tile_select` only acts with tiles)."""
    return [name for name, off in EXTENSIONS_OFF.items() if getattr(cfg, name) != off]


class ExtendedTracker(MVLMTracker):
    """`MVLMTracker` plus the heuristics of this module, each behind its TrackerConfig setting."""

    def _reset(self) -> None:
        super()._reset()
        self.thumbnail: Optional[np.ndarray] = None

    # ----------------------------------------------------------------------------------------
    # shot cuts

    def _new_shot(self, frame: np.ndarray) -> bool:
        """`shot_cut_threshold`: whether `frame` starts a new shot (MVLM gate only); remembers
        its thumbnail either way."""
        if self.cfg.shot_cut_threshold is None:
            return False
        thumb = shot_thumbnail(frame)
        previous, self.thumbnail = self.thumbnail, thumb
        cut = previous is not None and thumbnail_correlation(previous, thumb) < self.cfg.shot_cut_threshold
        return cut and self.cfg.gate == "mvlm"

    # ----------------------------------------------------------------------------------------
    # size damping

    def _local_box(self, raw: np.ndarray) -> np.ndarray:
        """`size_damping` β: width and height moved β of the way (in log space) from the
        previous state's to the predicted ones; centre unchanged."""
        beta = self.cfg.size_damping
        if beta >= 1.0 or self.state is None or raw[2] <= 0 or raw[3] <= 0:
            return raw
        cx, cy = raw[0] + raw[2] / 2, raw[1] + raw[3] / 2
        w = self.state[2] ** (1 - beta) * raw[2] ** beta
        h = self.state[3] ** (1 - beta) * raw[3] ** beta
        return np.array([cx - w / 2, cy - h / 2, w, h], dtype=raw.dtype)

    # ----------------------------------------------------------------------------------------
    # the global frame: tiles, refinement, contest

    def _global_answer(self, frame: np.ndarray, contest: bool = True) -> Answer:
        if contest and self.cfg.global_vs_local and self.cfg.gate == "mvlm" and self.state is not None:
            return self._contest(frame)
        return self._refined(frame, self._global_pass(frame))

    def _contest(self, frame: np.ndarray) -> Answer:
        """`global_vs_local`: the global answer (tiled, refined as set) and the local pass around
        the last box both run, and the one whose chosen candidate has the higher κmvlm answers.
        Without tiles the two views go through the network as one batch of two (~15 % less
        tracking time; outputs equal to float noise)."""
        zoom = self._tile_zoom(frame)
        if zoom > 0:
            global_answer = self._tiled_pass(frame, zoom)
            local_answer = self._passes(frame, [("local", None)])[0]
        else:
            global_answer, local_answer = self._passes(frame, [("global", None), ("local", None)])
        global_answer = self._refined(frame, global_answer)
        timing = global_answer.timing.plus(local_answer.timing)
        winner = global_answer if global_answer.kappa > local_answer.kappa else local_answer
        return dataclasses.replace(winner, timing=timing, contested=True)

    def _refined(self, frame: np.ndarray, answer: Answer) -> Answer:
        """`refine_global`: the local pass around the box a global pass chose answers instead
        (the frame stays a global one)."""
        if not self.cfg.refine_global:
            return answer
        box = self._map_back(answer.view, answer.c)
        if not np.isfinite(box).all():
            return answer  # _commit handles a non-finite answer
        around = mapping.clip_box(box, frame.shape[0], frame.shape[1], self.cfg.clip_margin)
        local = self._passes(frame, [("local", around)])[0]
        return dataclasses.replace(answer, view=local.view, c=local.c, timing=answer.timing.plus(local.timing),
                                   refined=True)

    def _global_pass(self, frame: np.ndarray) -> Answer:
        zoom = self._tile_zoom(frame)
        if zoom > 0:
            return self._tiled_pass(frame, zoom)
        return self._passes(frame, [("global", None)])[0]

    def _tile_zoom(self, frame: np.ndarray) -> float:
        """`target_scale_tiles`: zoom of the tiled global pass, windows of the last box's local
        crop side but never more than the frame's longer side; 0 = one whole-frame view."""
        if self.cfg.target_scale_tiles and self.state is not None:
            side = min(crop_side(self.state, self.cfg.search_factor), max(frame.shape[:2]))
            return self.search_size / side
        return 0.0

    def _tiled_pass(self, frame: np.ndarray, zoom: float) -> Answer:
        """Global pass over overlapping windows (`crops.tile_views`) in one batch; the window
        whose top candidate has the highest κmvlm (or score l, `tile_select`) is this frame's view."""
        t0 = time.perf_counter()
        with one_intra_op_thread():
            views = [mapping.SearchView(image, "global", t, t.scale_x, frame.shape[:2], reference=False)
                     for image, t in tile_views(frame, self.search_size, zoom)]
            search = to_network_input([v.image for v in views]).to(self.device)
        t1 = time.perf_counter()
        n = len(views)
        templates = ([t.expand(n, -1, -1, -1) for t in self.templates]
                     if (self.uses_templates and self.templates) else None)
        out = self.net(search, templates, self.text_emb.expand(n, -1, -1))
        t2 = time.perf_counter()
        with one_intra_op_thread():
            window = self.window if self._windowed("global") else None
            memories = [self._memory_prev(v) for v in views]
            memory = None if memories[0] is None else torch.cat(memories)
            c = conf.frame_confidence(out, self.text_vec, window, memory, self.params)
            ranked = c.l if self.cfg.tile_select == "score" else c.kappa_mvlm
            best = int(ranked.gather(1, c.top1[:, None])[:, 0].argmax())
            c = conf.confidence_row(c, best)
        return Answer("global", views[best], c, PassTiming(t1 - t0, t2 - t1, time.perf_counter() - t2))
