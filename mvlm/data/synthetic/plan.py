"""Planning one sequence: objects, sentence, trajectories, events, occluders, ground truth.

A `SequencePlan` is everything about a sequence except its pixels; `render.py` turns it into
frames. All randomness comes from one generator seeded with (seed, index), so a sequence is
reproducible on its own and sequences can be generated in any order or process. Event *kinds*
are stratified over blocks of ten sequences (a permutation seeded with (seed, index // 10)):
every full block holds at least 3 full occlusions and 4 exits/cuts, whatever the seed.

Ground truth comes from the same geometry the renderer draws. With T the target's sprite
pixels, I those inside the frame and V those inside the frame and not under an occluder:

    out_of_view_t    = I/T < 0.05
    full_occlusion_t = not out_of_view_t and V/T < 0.05
    visible_t        = not (out_of_view_t or full_occlusion_t)
    box_t            = tight box of the in-frame sprite pixels (occluded parts included) if visible_t,
                       else 0,0,0,0 (the absent-box convention of this benchmark)

Boxes are integers: x, y is the top-left pixel (0-based), w, h pixel counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mvlm.data.synthetic.background import BACKGROUND_KINDS, texture_size
from mvlm.data.synthetic.vocab import (
    COLOURS, SHAPES, SIZES, SIZE_RANGES, TEXTURES, ObjectSpec, diameter_range, jitter_tint, make_sprite,
)

ABSENT_FRACTION = 0.05  # below this share of the sprite visible the target counts as absent
PARTIAL_OCCLUSION = 0.2  # share of the in-frame sprite under an occluder that counts as partial
MIN_FRAMES = 16
MIN_SIDE = 64

# one slot per sequence in each block of ten: the event it is guaranteed to contain
PRIMARY_SLOTS = (
    "full_occlusion", "full_occlusion", "full_occlusion", "out_of_view", "out_of_view",
    "cut", "cut", "partial_occlusion", "scale_change", "fast_motion",
)
# independent extra events on top of the primary one
EXTRA_EVENT_PROB = {
    "full_occlusion": 0.25, "out_of_view": 0.15, "cut": 0.15, "partial_occlusion": 0.35,
    "scale_change": 0.35, "fast_motion": 0.25, "noise": 0.35, "illumination": 0.25,
}
TIMELINE_EVENTS = ("full_occlusion", "out_of_view", "cut", "partial_occlusion", "fast_motion")
MAX_TIMELINE_EVENTS = 4
# sentence kinds per block of ten sequences: relational ones stay a minority (a small CPU model
# cannot learn relations), and every kind still names the target by attributes alone
SENTENCE_SLOTS = ("relational",) * 2 + ("motion",) * 2 + ("attribute",) * 6
SIDES = ("left", "right", "top", "bottom")
DIRECTIONS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
ATTRIBUTE_KEYS = (
    "full_occlusion", "partial_occlusion", "out_of_view", "cut", "scale_change", "fast_motion",
    "motion_blur", "noise", "illumination_variation", "low_resolution", "distractors",
    "similar_object", "background_clutter", "camera_motion", "relational_sentence", "motion_sentence",
)


class SynthError(ValueError):
    """Bad arguments to the generator (sizes, counts, paths); the message says which."""


@dataclass
class Occluder:
    """An opaque textured rectangle drawn above every object during frames first..last.

    `rect` = (x0, y0, x1, y1) in frame pixels, x1/y1 exclusive; it may reach outside the frame.
    """

    kind: str  # "wall" (hides the target) | "band" (a strip across the frame, hides part)
    rect: tuple[int, int, int, int]
    first: int
    last: int
    texture_seed: int


@dataclass
class Shot:
    """Frames first..last seen by one camera: one background texture, panned by `offsets`."""

    first: int
    last: int
    background: str
    texture_seed: int
    pan: bool


@dataclass
class SequencePlan:
    name: str
    index: int
    seed: int
    width: int
    height: int
    frames: int
    objects: list[ObjectSpec]  # objects[0] is the target
    centres: np.ndarray  # (F, K, 2) float, pixel centres; may lie outside the frame
    diameters: np.ndarray  # (F, K) float, pixels
    shots: list[Shot]
    bg_offsets: np.ndarray  # (F, 2) int, top-left (x, y) of the frame inside the shot texture
    occluders: list[Occluder]
    blur_length: np.ndarray  # (F,) int, motion-blur kernel length in px (0 = none)
    blur_angle: np.ndarray  # (F,) float, degrees
    noise_sigma: float  # grey levels, applied where `noisy`
    noisy: np.ndarray  # (F,) bool
    gain: np.ndarray  # (F,) float, global brightness factor
    sentence: str = ""
    sentence_kind: str = "attribute"
    sentence_parts: dict = field(default_factory=dict)
    planned: dict = field(default_factory=dict)  # event -> planning details
    # ground truth, filled by compute_ground_truth
    boxes: np.ndarray | None = None  # (F, 4) int
    full_occlusion: np.ndarray | None = None  # (F,) bool
    out_of_view: np.ndarray | None = None  # (F,) bool
    visible_fraction: np.ndarray | None = None  # (F,) V/T
    occluded_fraction: np.ndarray | None = None  # (F,) 1 - V/I
    in_frame_fraction: np.ndarray | None = None  # (F,) I/T

    @property
    def short_side(self) -> int:
        return min(self.width, self.height)

    @property
    def target(self) -> ObjectSpec:
        return self.objects[0]

    @property
    def visible(self) -> np.ndarray:
        return ~(self.full_occlusion | self.out_of_view)

    def shot_of(self, t: int) -> int:
        for i, shot in enumerate(self.shots):
            if shot.first <= t <= shot.last:
                return i
        raise IndexError(t)


# ---------------------------------------------------------------------------------------------
# events and objects


def choose_events(seed: int, index: int, rng: np.random.Generator) -> list[str]:
    """The events of sequence `index`: its stratified primary event plus independent extras."""
    block = np.random.default_rng([seed, index // 10, 7919]).permutation(len(PRIMARY_SLOTS))
    primary = PRIMARY_SLOTS[block[index % 10]]
    events = [primary]
    for name, prob in EXTRA_EVENT_PROB.items():
        if rng.random() < prob and name not in events:
            events.append(name)
    timeline = [e for e in events if e in TIMELINE_EVENTS]
    dropped = timeline[MAX_TIMELINE_EVENTS:]  # the primary event is first and always kept
    return [e for e in events if e not in dropped]


def choose_sentence_kind(seed: int, index: int) -> str:
    block = np.random.default_rng([seed, index // 10, 104729]).permutation(len(SENTENCE_SLOTS))
    return SENTENCE_SLOTS[block[index % 10]]


def _shared(a: ObjectSpec | tuple, target: ObjectSpec) -> tuple[str, ...]:
    shape, colour, size = a if isinstance(a, tuple) else a.triple
    names = []
    if shape == target.shape:
        names.append("shape")
    if colour == target.colour:
        names.append("colour")
    if size == target.size:
        names.append("size")
    return tuple(names)


def _pick(rng: np.random.Generator, options, exclude=()) -> str:
    choices = [o for o in options if o not in exclude]
    return choices[int(rng.integers(len(choices)))]


def _texture_for(size: str, rng: np.random.Generator) -> str:
    if size == "small":
        return "plain"  # stripes/dots do not survive at a few pixels
    return TEXTURES[int(rng.choice(3, p=[0.4, 0.3, 0.3]))]


def choose_objects(rng: np.random.Generator) -> list[ObjectSpec]:
    """Target first, then distractors that share attributes with it; the target's
    (shape, colour, size) triple is unique among them."""
    shape, colour = _pick(rng, SHAPES), _pick(rng, COLOURS)
    size = "small" if rng.random() < 0.45 else "large"
    target = ObjectSpec(shape, colour, size, _texture_for(size, rng), jitter_tint(colour, rng), role="target")
    other_size = "large" if size == "small" else "small"
    triples = [
        (_pick(rng, SHAPES, [shape]), colour, _pick(rng, SIZES)),  # same colour
        (shape, _pick(rng, COLOURS, [colour]), _pick(rng, SIZES)),  # same shape
    ]
    if rng.random() < 0.5:
        triples.append((shape, colour, other_size))  # only the size word separates them
    if rng.random() < 0.4:
        triples.append((_pick(rng, SHAPES, [shape]), _pick(rng, COLOURS, [colour]), size))
    for _ in range(int(rng.integers(0, 3))):
        while True:
            triple = (_pick(rng, SHAPES), _pick(rng, COLOURS), _pick(rng, SIZES))
            if triple != target.triple:
                break
        triples.append(triple)
    objects = [target]
    for t_shape, t_colour, t_size in triples:
        spec = ObjectSpec(
            t_shape, t_colour, t_size, _texture_for(t_size, rng), jitter_tint(t_colour, rng),
            shares=_shared((t_shape, t_colour, t_size), target),
        )
        objects.append(spec)
    return objects


# ---------------------------------------------------------------------------------------------
# sentences


_WORD_SETS = (
    (("colour", "shape"), 0.45),
    (("size", "colour", "shape"), 0.35),
    (("texture", "colour", "shape"), 0.12),
    (("size", "texture", "colour", "shape"), 0.08),
)
_WORD_ORDER = ("size", "texture", "colour", "shape")


def _matches(obj: ObjectSpec, target: ObjectSpec, words: tuple[str, ...]) -> bool:
    return all(getattr(obj, w) == getattr(target, w) for w in words)


def attribute_phrase(objects: list[ObjectSpec], rng: np.random.Generator) -> tuple[str, tuple[str, ...]]:
    """"the large striped red triangle": a phrase that no distractor also matches."""
    target = objects[0]
    options, weights = [], []
    for words, weight in _WORD_SETS:
        if "texture" in words and target.size != "large":
            continue
        if any(_matches(o, target, words) for o in objects[1:]):
            continue
        options.append(words)
        weights.append(weight)
    probs = np.asarray(weights) / sum(weights)
    words = options[int(rng.choice(len(options), p=probs))]
    text = " ".join(getattr(target, w) for w in _WORD_ORDER if w in words)
    return f"the {text}", words


def relation_to(plan_centres: np.ndarray, diameters: np.ndarray, objects: list[ObjectSpec], rng) -> dict | None:
    """A frame-1 spatial relation of the target to an object named unambiguously by colour and
    shape, e.g. {"relation": "left of", "reference": 3, "phrase": "left of the blue circle"}."""
    target_c = plan_centres[0]
    candidates = []
    for k in range(1, len(objects)):
        key = (objects[k].colour, objects[k].shape)
        if sum((o.colour, o.shape) == key for o in objects) != 1:
            continue
        dx, dy = target_c - plan_centres[k]
        gap = 0.5 * (diameters[0] + diameters[k])
        if abs(dx) >= abs(dy) and abs(dx) > gap:
            relation = "left of" if dx < 0 else "right of"
        elif abs(dy) > abs(dx) and abs(dy) > gap:
            relation = "above" if dy < 0 else "below"
        else:
            continue
        candidates.append((k, relation))
    if not candidates:
        return None
    k, relation = candidates[int(rng.integers(len(candidates)))]
    ref = objects[k]
    return {"relation": relation, "reference": k, "phrase": f"{relation} the {ref.colour} {ref.shape}"}


# ---------------------------------------------------------------------------------------------
# timeline and trajectories


def _windows(events: list[str], frames: int, start: int, rng: np.random.Generator) -> dict[str, tuple[int, int]]:
    """Disjoint frame windows (first, last) for the timeline events, in random order."""
    end = frames - 3  # leave a few visible frames after the last event
    capacity = max(1, min(MAX_TIMELINE_EVENTS, (end - start + 1) // 9))  # ~9 frames per event
    timeline = [e for e in events if e in TIMELINE_EVENTS][:capacity]  # the primary event is first
    rng.shuffle(timeline)
    if not timeline:
        return {}
    bounds = np.linspace(start, end, len(timeline) + 1).astype(int)
    out = {}
    for name, lo, hi in zip(timeline, bounds[:-1], bounds[1:] - 1):
        length = hi - lo + 1
        if name == "cut":
            out[name] = (int((lo + hi) // 2), int((lo + hi) // 2))
            continue
        if name == "out_of_view":
            need = int(np.clip(frames // 5, 8, 36))
            if min(need, length) < 6:
                continue  # too short for exit, absence and re-entry
            # at the end of its segment: the frames before it steer the target to the border
            need = min(need, length)
            last = hi - int(rng.integers(0, max(1, (length - need) // 2)))
            first = last - need + 1
            out[name] = (first, last)
            if first - lo >= 2:
                out["exit_lead"] = (lo, first - 1)
            continue
        elif name == "full_occlusion":
            need = int(rng.integers(max(3, frames // 30), max(4, frames // 10) + 1))
        elif name == "fast_motion":
            need = int(rng.integers(max(3, frames // 30), max(4, frames // 12) + 1))
        else:  # partial occlusion: the band is placed mid-window
            need = max(3, length // 2)
        need = min(need, length)
        if need < 3:
            continue
        first = lo + int(rng.integers(0, length - need + 1))
        out[name] = (first, first + need - 1)
    return out


def _place(rng, diameters, width, height, min_dist_from=None, min_dist=0.0, box=None):
    """Centres (K, 2) with objects inside the frame and apart from each other where possible.

    `box`: (x_lo, x_hi, y_lo, y_hi) limits for the target's centre (index 0);
    `min_dist_from`/`min_dist`: the target (index 0) must land at least that far from a point.
    """
    centres = np.zeros((len(diameters), 2))
    for k, d in enumerate(diameters):
        r = d / 2 + 2
        x_lo, x_hi, y_lo, y_hi = r, width - r, r, height - r
        if k == 0 and box is not None:
            x_lo, x_hi, y_lo, y_hi = box
        best, best_score = None, -np.inf
        for _ in range(200):
            c = np.array([rng.uniform(x_lo, max(x_lo, x_hi)), rng.uniform(y_lo, max(y_lo, y_hi))])
            score = min(
                [np.hypot(*(c - centres[j])) - (d + diameters[j]) / 2 - 3 for j in range(k)] or [np.inf]
            )
            if k == 0 and min_dist_from is not None:
                score = min(score, np.hypot(*(c - min_dist_from)) - min_dist)
            if score >= 0:
                best = c
                break
            if score > best_score:
                best, best_score = c, score
        centres[k] = best
    return centres


def _diameter_curves(objects, events, frames, short_side, rng):
    """(F, K) diameters: constant, except the target's ramp when it has a scale change."""
    K = len(objects)
    diam = np.zeros((frames, K))
    for k, obj in enumerate(objects):
        lo, hi = diameter_range(obj.size, short_side)
        diam[:, k] = max(4.0, rng.uniform(lo, hi))
    details = {}
    if "scale_change" in events:
        lo, hi = SIZE_RANGES[objects[0].size]
        small_end = rng.uniform(lo, lo + 0.25 * (hi - lo))
        big_end = rng.uniform(min(hi, small_end * 1.7), hi)
        a, b = (small_end, big_end) if rng.random() < 0.5 else (big_end, small_end)
        t0 = int(rng.integers(0, max(1, frames // 3)))
        t1 = int(rng.integers(2 * frames // 3, frames))
        ramp = np.clip((np.arange(frames) - t0) / max(1, t1 - t0), 0, 1)
        ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep: no kink at the ends
        diam[:, 0] = np.maximum(4.0, (a + (b - a) * ramp) * short_side)
        details = {"first": t0, "last": t1, "from_px": round(float(diam[0, 0]), 1), "to_px": round(float(diam[-1, 0]), 1)}
    return diam, details


def _bounce(pos, vel, r, width, height):
    for axis, limit in ((0, width), (1, height)):
        if pos[axis] < r:
            pos[axis], vel[axis] = r, abs(vel[axis])
        elif pos[axis] > limit - r:
            pos[axis], vel[axis] = limit - r, -abs(vel[axis])


def _random_velocity(rng, speed_lo, speed_hi):
    angle = rng.uniform(0, 2 * np.pi)
    return np.array([np.cos(angle), np.sin(angle)]) * rng.uniform(speed_lo, speed_hi)


def _exit_path(rng, start, r, width, height, out_len, in_len, hide_len):
    """Target positions for an exit through the nearest side and a re-entry through another."""
    dist = {"left": start[0], "right": width - start[0], "top": start[1], "bottom": height - start[1]}
    exit_side = min(SIDES, key=lambda s: dist[s])
    entry_side = _pick(rng, SIDES, [exit_side])
    margin = r + 3

    def outside(side, along):
        return {
            "left": np.array([-margin, along]), "right": np.array([width + margin, along]),
            "top": np.array([along, -margin]), "bottom": np.array([along, height + margin]),
        }[side]

    gone = outside(exit_side, start[1] if exit_side in ("left", "right") else start[0])
    along = rng.uniform(margin, (height if entry_side in ("left", "right") else width) - margin)
    enter_from = outside(entry_side, along)
    depth = r + 2 + 0.1 * min(width, height)
    inward = {"left": (1, 0), "right": (-1, 0), "top": (0, 1), "bottom": (0, -1)}[entry_side]
    enter_to = enter_from + np.array(inward) * (margin + depth)
    path = [start + (gone - start) * (j / out_len) for j in range(1, out_len + 1)]
    path += [gone] * hide_len
    path += [enter_from + (enter_to - enter_from) * (j / in_len) for j in range(0, in_len + 1)]
    return path, exit_side, entry_side, np.array(inward, float)


def simulate(plan_args: dict, objects, windows, diam, rng, motion_dir=None):
    """Centres (F, K, 2) of every object, plus planning details of the target's events."""
    width, height, frames = plan_args["width"], plan_args["height"], plan_args["frames"]
    unit = min(width, height) / 192.0  # speeds are tuned at the default 256x192
    K = len(objects)
    details: dict = {}

    # frame-1 placement; a "moving <dir>" target starts where it has room to move that way
    box = None
    motion_frames = max(8, frames // 6) if motion_dir else 0
    motion_speed = rng.uniform(0.8, 1.6) * unit
    if motion_dir:
        r = diam[0, 0] / 2 + 2
        travel = min(motion_frames * motion_speed, 0.5 * (width if motion_dir in ("left", "right") else height))
        motion_speed = travel / motion_frames
        box = {
            "right": (r, width - r - travel, r, height - r), "left": (r + travel, width - r, r, height - r),
            "down": (r, width - r, r, height - r - travel), "up": (r, width - r, r + travel, height - r),
        }[motion_dir]
    pos = _place(rng, diam[0], width, height, box=box)
    vel = np.stack([_random_velocity(rng, 0.2 * unit, 1.4 * unit) for _ in range(K)])
    vel[0] = _random_velocity(rng, 0.4 * unit, 1.6 * unit)
    if motion_dir:
        vel[0] = np.array(DIRECTIONS[motion_dir]) * motion_speed

    centres = np.zeros((frames, K, 2))
    scripted: dict[int, np.ndarray] = {}  # frame -> forced target centre (exit / re-entry)
    cut = windows.get("cut", (None,))[0]
    fast = windows.get("fast_motion")
    # the target crosses occluders in a straight line: no loitering behind a wall for ages
    steady = [
        (max(1, a - frames // 12), min(frames - 1, b + frames // 12))
        for name, (a, b) in windows.items() if name in ("full_occlusion", "partial_occlusion")
    ]
    exit_window = windows.get("out_of_view")
    lead = windows.get("exit_lead")
    max_speed = 2.0 * unit
    for t in range(frames):
        if t > 0:
            if fast and t == fast[0]:
                speed = max(4.0, min(1.3 * diam[t, 0], 0.3 * min(width, height)))
                vel[0] = vel[0] / max(1e-6, np.hypot(*vel[0])) * speed
                details["fast_motion"] = {"speed_px": round(float(speed), 1)}
            if lead and t == lead[0]:  # head for the nearest side before leaving the frame
                x, y = pos[0]
                toward = {(-1.0, 0.0): x, (1.0, 0.0): width - x, (0.0, -1.0): y, (0.0, 1.0): height - y}
                direction = np.array(min(toward, key=toward.get))
                vel[0] = direction * max(1.2 * unit, float(np.hypot(*vel[0])))
            for a, _b in steady:
                if t == a:
                    speed = float(np.hypot(*vel[0]))
                    vel[0] = vel[0] / max(1e-6, speed) * max(speed, 0.8 * unit)
            if fast and t == fast[1] + 1:
                vel[0] = vel[0] / max(1e-6, np.hypot(*vel[0])) * rng.uniform(0.4, 1.4) * unit
            if t == cut:
                old = pos[0].copy()
                pos = _place(rng, diam[t], width, height, min_dist_from=old, min_dist=0.35 * np.hypot(width, height))
                vel = np.stack([_random_velocity(rng, 0.2 * unit, 1.4 * unit) for _ in range(K)])
                details["cut"] = {"frame": int(t), "jump_px": round(float(np.hypot(*(pos[0] - old))), 1)}
            else:
                for k in range(K):
                    if k == 0 and t in scripted:
                        pos[0] = scripted[t].copy()  # exit / re-entry path, no dynamics
                        continue
                    scripted_speed = t < motion_frames or (fast and fast[0] <= t <= fast[1])
                    scripted_speed = scripted_speed or any(a <= t <= b for a, b in steady)
                    scripted_speed = scripted_speed or bool(lead and lead[0] <= t <= lead[1])
                    if not (k == 0 and scripted_speed):
                        vel[k] += rng.normal(0, 0.08 * unit, 2)  # scripted speeds skip the random walk
                        speed = np.hypot(*vel[k])
                        if speed > max_speed:
                            vel[k] *= max_speed / speed
                    pos[k] += vel[k]
                    _bounce(pos[k], vel[k], diam[t, k] / 2 + 1, width, height)
        if exit_window and t == exit_window[0]:
            total = exit_window[1] - exit_window[0] + 1
            # leave at a plausible speed (about 2.5 px/frame at 256x192) where the window allows
            nearest = min(pos[0][0], width - pos[0][0], pos[0][1], height - pos[0][1]) + diam[t, 0] / 2
            hide_min = max(1, total // 3)  # the absence itself gets a third of the window
            out_len = int(np.clip(np.ceil(nearest / (2.5 * unit)), 2, max(2, (total - hide_min - 1) // 2)))
            entry_distance = diam[t, 0] + 5 + 0.1 * min(width, height)  # see _exit_path
            in_len = int(np.clip(np.ceil(entry_distance / (2.5 * unit)), 2, max(2, total - out_len - hide_min - 1)))
            hide_len = max(1, total - out_len - in_len - 1)
            path, exit_side, entry_side, inward = _exit_path(
                rng, pos[0].copy(), diam[t, 0] / 2, width, height, out_len, in_len, hide_len
            )
            scripted = {t + 1 + j: p for j, p in enumerate(path)}
            vel[0] = inward * max(0.6 * unit, float(np.hypot(*vel[0])))
            details["out_of_view"] = {"exit_side": exit_side, "entry_side": entry_side}
        centres[t] = pos
    return centres, details


# ---------------------------------------------------------------------------------------------
# scene: shots, occluders, effects


def _target_extent(plan: SequencePlan, t: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) exclusive bounds of the target's sprite pixels at frame t (unclipped)."""
    sprite = _target_sprite(plan, t)
    ys, xs = np.nonzero(sprite.mask)
    cx, cy = np.round(plan.centres[t, 0]).astype(int)
    return (cx - sprite.half + xs.min(), cy - sprite.half + ys.min(), cx - sprite.half + xs.max() + 1, cy - sprite.half + ys.max() + 1)


def _target_sprite(plan: SequencePlan, t: int):
    target = plan.target
    return make_sprite(target.shape, target.tint, target.texture, int(round(plan.diameters[t, 0])))


def make_shots(frames, cut, width, height, rng) -> tuple[list[Shot], np.ndarray]:
    """Shots split at the cut frame and the per-frame pan offsets (F, 2) inside each texture."""
    starts = [0] + ([cut] if cut is not None else [])
    ends = ([cut - 1] if cut is not None else []) + [frames - 1]
    tex_w, tex_h = texture_size(width, height)
    shots, offsets = [], np.zeros((frames, 2), int)
    previous = None
    for first, last in zip(starts, ends):
        kind = _pick(rng, BACKGROUND_KINDS, [previous] if previous else [])
        previous = kind
        pan = bool(rng.random() < 0.6)
        shots.append(Shot(first, last, kind, int(rng.integers(2**31)), pan))
        pos = np.array([rng.uniform(0, tex_w - width), rng.uniform(0, tex_h - height)])
        vel = rng.uniform(-0.5, 0.5, 2) * (min(width, height) / 192.0) if pan else np.zeros(2)
        for t in range(first, last + 1):
            offsets[t] = np.round(pos).astype(int)
            pos += vel
            for axis, limit in ((0, tex_w - width), (1, tex_h - height)):
                if not 0 <= pos[axis] <= limit:
                    vel[axis] = -vel[axis]
                    pos[axis] = np.clip(pos[axis], 0, limit)
    return shots, offsets


def place_occluders(plan: SequencePlan, windows, rng, lifetime: int | None = None) -> list[Occluder]:
    """A wall over the target's path during the full-occlusion window, a band across its path
    mid partial-occlusion window. Occluders stand for their whole shot, or, with `lifetime`,
    only from `lifetime` frames before their window to as many after (never on frame 1):
    used when a slow target in a short sequence would still sit under a static wall."""
    occluders = []

    def active(a: int, b: int) -> tuple[int, int]:
        shot = plan.shots[plan.shot_of(a)]
        if lifetime is None:
            return shot.first, shot.last
        return max(shot.first, a - lifetime, 1), min(shot.last, b + lifetime)

    if "full_occlusion" in windows:
        a, b = windows["full_occlusion"]
        extents = np.array([_target_extent(plan, t) for t in range(a, b + 1)])
        margin = 1 + int(rng.integers(0, 3))
        rect = (
            int(extents[:, 0].min() - margin), int(extents[:, 1].min() - margin),
            int(extents[:, 2].max() + margin), int(extents[:, 3].max() + margin),
        )
        occluders.append(Occluder("wall", rect, *active(a, b), int(rng.integers(2**31))))
        plan.planned["full_occlusion"] = {"first": a, "last": b}
    if "partial_occlusion" in windows:
        a, b = windows["partial_occlusion"]
        m = (a + b) // 2
        x0, y0, x1, y1 = _target_extent(plan, m)
        vx, vy = plan.centres[min(m + 1, plan.frames - 1), 0] - plan.centres[max(m - 1, 0), 0]
        if abs(vx) >= abs(vy):  # moving sideways: a vertical band it passes behind
            band = max(2, int(round((x1 - x0) * rng.uniform(0.35, 0.55))))
            start = int((x0 + x1) / 2 - band / 2 + rng.uniform(-0.15, 0.15) * (x1 - x0))
            rect = (start, -1, start + band, plan.height + 1)
        else:
            band = max(2, int(round((y1 - y0) * rng.uniform(0.35, 0.55))))
            start = int((y0 + y1) / 2 - band / 2 + rng.uniform(-0.15, 0.15) * (y1 - y0))
            rect = (-1, start, plan.width + 1, start + band)
        occluders.append(Occluder("band", rect, *active(a, b), int(rng.integers(2**31))))
        plan.planned["partial_occlusion"] = {"first": a, "last": b}
    return occluders


def make_effects(plan: SequencePlan, events, windows, rng) -> None:
    """Motion blur (with fast motion), sensor noise, illumination change: per-frame arrays."""
    F = plan.frames
    plan.blur_length = np.zeros(F, int)
    plan.blur_angle = np.zeros(F)
    if "fast_motion" in windows:
        a, b = windows["fast_motion"]
        for t in range(a, b + 1):
            step = plan.centres[t, 0] - plan.centres[t - 1, 0]
            plan.blur_length[t] = int(np.clip(np.hypot(*step) * 0.5, 3, 15))
            plan.blur_angle[t] = float(np.degrees(np.arctan2(step[1], step[0])))
        plan.planned["fast_motion"] = {"first": a, "last": b, **plan.planned.get("fast_motion", {})}
    plan.noisy = np.zeros(F, bool)
    plan.noise_sigma = 0.0
    if "noise" in events:
        plan.noise_sigma = float(rng.uniform(6, 16))
        if rng.random() < 0.5:
            a, b = 0, F - 1
        else:
            length = int(rng.integers(F // 4, F // 2 + 1))
            a = int(rng.integers(0, F - length + 1))
            b = a + length - 1
        plan.noisy[a : b + 1] = True
        plan.planned["noise"] = {"first": a, "last": b, "sigma": round(plan.noise_sigma, 1)}
    plan.gain = np.ones(F)
    if "illumination" in events:
        length = int(rng.integers(F // 4, F // 2 + 1))
        a = int(rng.integers(1, F - length + 1))
        depth = rng.uniform(0.3, 0.5) * (1 if rng.random() < 0.7 else -0.8)  # mostly darker
        phase = np.sin(np.pi * np.arange(length) / max(1, length - 1))
        plan.gain[a : a + length] = 1.0 - depth * phase
        plan.planned["illumination"] = {
            "first": a, "last": a + length - 1, "gain_min": round(float(plan.gain.min()), 2),
            "gain_max": round(float(plan.gain.max()), 2),
        }


# ---------------------------------------------------------------------------------------------
# ground truth


def compute_ground_truth(plan: SequencePlan) -> None:
    """Boxes, flags and visible fractions of the target from the drawn geometry (see module doc)."""
    F = plan.frames
    boxes = np.zeros((F, 4), int)
    visible_fraction = np.zeros(F)
    occluded_fraction = np.zeros(F)
    in_frame_fraction = np.zeros(F)
    for t in range(F):
        sprite = _target_sprite(plan, t)
        cx, cy = np.round(plan.centres[t, 0]).astype(int)
        x0, y0 = cx - sprite.half, cy - sprite.half
        total = int(sprite.mask.sum())
        h, w = sprite.mask.shape
        fx0, fy0 = max(0, x0), max(0, y0)
        fx1, fy1 = min(plan.width, x0 + w), min(plan.height, y0 + h)
        if fx1 <= fx0 or fy1 <= fy0:
            continue  # entirely outside the frame
        inside = np.zeros_like(sprite.mask)
        inside[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] = sprite.mask[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
        n_inside = int(inside.sum())
        uncovered = inside.copy()
        for occ in plan.occluders:
            if occ.first <= t <= occ.last:
                ox0, oy0, ox1, oy1 = occ.rect
                uncovered[max(0, oy0 - y0) : max(0, oy1 - y0), max(0, ox0 - x0) : max(0, ox1 - x0)] = False
        in_frame_fraction[t] = n_inside / total
        visible_fraction[t] = uncovered.sum() / total
        occluded_fraction[t] = 1.0 - uncovered.sum() / n_inside if n_inside else 0.0
        if n_inside:
            ys, xs = np.nonzero(inside)
            boxes[t] = (x0 + xs.min(), y0 + ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    plan.out_of_view = in_frame_fraction < ABSENT_FRACTION
    plan.full_occlusion = ~plan.out_of_view & (visible_fraction < ABSENT_FRACTION)
    boxes[~plan.visible] = 0
    plan.boxes = boxes
    plan.visible_fraction = visible_fraction
    plan.occluded_fraction = occluded_fraction
    plan.in_frame_fraction = in_frame_fraction


def _valid(plan: SequencePlan, windows) -> bool:
    """Frame 1 shows the whole target, the planned events happened, occluders stay modest."""
    if plan.visible_fraction[0] < 0.95 or not plan.visible[-1]:
        return False
    if "full_occlusion" in windows:
        a, b = windows["full_occlusion"]
        if not plan.full_occlusion[a : b + 1].all():
            return False
        # a slow target can loiter behind a static wall; keep absences near the planned length
        if plan.full_occlusion.sum() > (b - a + 1) + max(8, plan.frames // 8):
            return False
    if "out_of_view" in windows and not plan.out_of_view.any():
        return False
    for occ in plan.occluders:
        x0, y0, x1, y1 = occ.rect
        area = (min(x1, plan.width) - max(x0, 0)) * (min(y1, plan.height) - max(y0, 0))
        if occ.kind == "wall" and area > 0.3 * plan.width * plan.height:
            return False
    if "partial_occlusion" in windows and not (plan.occluded_fraction >= PARTIAL_OCCLUSION).any():
        return False
    return True


# ---------------------------------------------------------------------------------------------
# the whole plan


def plan_sequence(seed: int, index: int, width: int = 256, height: int = 192, frames: int = 120,
                  max_attempts: int = 25) -> SequencePlan:
    """Plan sequence `index` of the dataset generated with `seed` (deterministic).

    Draws are repeated (from the same generator, so still deterministic) until frame 1 shows the
    target whole and every planned event is realised by the geometry.
    """
    check_size(width, height, frames)
    rng = np.random.default_rng([seed, index])
    events = choose_events(seed, index, rng)
    objects = choose_objects(rng)
    sentence_kind = choose_sentence_kind(seed, index)
    motion_dir = _pick(rng, tuple(DIRECTIONS)) if sentence_kind == "motion" else None
    short = min(width, height)
    for attempt in range(max_attempts + 1):
        if attempt == max_attempts:
            events = [e for e in events if e not in TIMELINE_EVENTS]  # last resort: always valid
        diam, scale_details = _diameter_curves(objects, events, frames, short, rng)
        start = max(4, frames // 12, (max(8, frames // 6) + 1) if motion_dir else 0)
        windows = _windows(events, frames, start, rng)
        args = {"width": width, "height": height, "frames": frames}
        centres, details = simulate(args, objects, windows, diam, rng, motion_dir)
        shots, offsets = make_shots(frames, windows.get("cut", (None,))[0], width, height, rng)
        plan = SequencePlan(
            name=f"{objects[0].shape}-{index + 1}", index=index, seed=seed, width=width, height=height,
            frames=frames, objects=objects, centres=centres, diameters=diam, shots=shots, bg_offsets=offsets,
            occluders=[], blur_length=np.zeros(frames, int), blur_angle=np.zeros(frames), noise_sigma=0.0,
            noisy=np.zeros(frames, bool), gain=np.ones(frames),
        )
        plan.planned.update(details)
        if scale_details:
            plan.planned["scale_change"] = scale_details
        if "out_of_view" in windows:
            plan.planned["out_of_view"].update(dict(zip(("first", "last"), windows["out_of_view"])))
        lifetime = None if attempt < max_attempts // 3 else max(2, frames // 10)
        plan.occluders = place_occluders(plan, windows, rng, lifetime)
        make_effects(plan, events, windows, rng)
        compute_ground_truth(plan)
        plan.planned["attempts"] = attempt + 1
        if _valid(plan, windows):
            break
    _write_sentence(plan, sentence_kind, motion_dir, rng)
    return plan


def _write_sentence(plan: SequencePlan, kind: str, motion_dir: str | None, rng) -> None:
    phrase, words = attribute_phrase(plan.objects, rng)
    parts = {"attribute_words": list(words), "attribute_phrase": phrase}
    if kind == "relational":
        relation = relation_to(plan.centres[0], plan.diameters[0], plan.objects, rng)
        if relation is None:
            kind = "attribute"  # no object can be named unambiguously as a reference
        else:
            parts.update(relation)
            phrase = f"{phrase} {relation['phrase']}"
    if kind == "motion":
        parts["direction"] = motion_dir
        phrase = f"{phrase} moving {motion_dir}"
    plan.sentence, plan.sentence_kind, plan.sentence_parts = phrase, kind, parts


def check_size(width: int, height: int, frames: int) -> None:
    for name, value in (("width", width), ("height", height), ("frames", frames)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise SynthError(f"{name} must be an integer, got {value!r}")
    if width < MIN_SIDE or height < MIN_SIDE:
        raise SynthError(f"frame size {width}x{height} too small: both sides must be >= {MIN_SIDE}")
    if width > 4096 or height > 4096:
        raise SynthError(f"frame size {width}x{height} too large: both sides must be <= 4096")
    if frames < MIN_FRAMES:
        raise SynthError(f"frames={frames}: need at least {MIN_FRAMES} frames per sequence")
