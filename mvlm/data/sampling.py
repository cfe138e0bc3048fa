"""Training samples from annotated sequences: local crops, templates, global and absent views.

One sample = (search view, templates, sentence, target box, presence flag):

- **local**: a square crop around a jittered GT box, as the tracker's local pass sees it
  (side = ceil(sqrt(w'h')·search_factor); w' = w·exp(N(0,1)·scale_jitter), same for h';
  centre moved by (u − 0.5)·sqrt(w'h')·center_jitter per axis, u ~ U[0, 1)).
- **global**: the frame as the tracker's global pass sees it: the whole frame in one view
  (`crops.global_view`), stretched or letterboxed (`letterbox_share`).
- **absent**: a view without the target: the global view of a frame where the target is
  invisible when the sequence has one, else a crop of the frame that does not touch the target
  box. Score target all zero, no box loss. (The reference never trains on either kind, §7.3-4.)

Shares: local : global = local_share : global_share; `absent_share` of the global draws are
absent views. Templates (bbox mode) are `box_view` crops of other visible frames of the same
sequence within ±max_gap of the search frame (drawn with replacement, no jitter; any other
visible frame when none is that close, the search frame itself only when it is the only one).
Each sequence has one sentence; a share `neutral_sentence_share` of the samples gets
`neutral_sentence` instead (box mode: only the templates then say which object is meant). A
horizontal flip (p = hflip) flips search and templates together, mirrors the box and swaps
left/right words in the sentence (the reference leaves the text wrong, §7.3-8).

Targets are normalized ``cx, cy, w, h`` in the search view (divided by the view size, the
tracker's convention; the reference's ``size − 1`` is §7.3-11). A local crop whose jittered
window leaves the target centre outside the view counts as absent.

Sample ``i`` of epoch ``e`` depends only on (seed, e, i), never on the worker or rank that draws
it, so multi-process runs split the same sample list and a resumed run sees the same data.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from pathlib import Path
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch

from mvlm.config import SamplingConfig
from mvlm.data.crops import box_view, global_view, local_view, to_network_input
from mvlm.data.sequence import DataError, Sequence

KINDS = ("local", "global", "absent")
_LOADER_ALIASES = {"synth": "lasot", "synthetic": "lasot"}  # the embedded benchmark uses LaSOT layout


# --------------------------------------------------------------------------------------------
# language


_LEFT_RIGHT = re.compile(r"\b(left|right)(?=(?:most|wards?)?\b)", re.IGNORECASE)


def _match_case(word: str, like: str) -> str:
    if like.isupper():
        return word.upper()
    if like[0].isupper():
        return word.capitalize()
    return word


def swap_left_right(sentence: str) -> str:
    """Mirror a sentence: "left" <-> "right" (also -most, -ward(s)), keeping the case."""
    return _LEFT_RIGHT.sub(
        lambda m: _match_case("right" if m.group(1).lower() == "left" else "left", m.group(1)), sentence
    )


# --------------------------------------------------------------------------------------------
# samples


@dataclass
class TrainingSample:
    """One training view. Images are RGB uint8; `box` is normalized cx, cy, w, h in the search view."""

    search: np.ndarray  # (S, S, 3)
    templates: list[np.ndarray]  # each (T, T, 3); empty in template-free mode
    sentence: str
    box: np.ndarray  # (4,) float32; zeros when absent
    present: bool
    kind: str  # "local" | "global" | "absent"
    source: str = ""  # "<dataset>/<sequence>#<frame>" for debugging


@dataclass
class TrainingBatch:
    search: torch.Tensor  # (B, 6, S, S) float, ImageNet-normalized
    templates: list[torch.Tensor]  # each (B, 6, T, T)
    sentences: list[str]
    boxes: torch.Tensor  # (B, 4) normalized cx, cy, w, h
    present: torch.Tensor  # (B,) bool
    kinds: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sentences)


def collate(samples: list[TrainingSample]) -> TrainingBatch:
    """Stack samples into network inputs (`crops.to_network_input`, the tracker's normalization)."""
    n_templates = len(samples[0].templates)
    return TrainingBatch(
        search=to_network_input(np.stack([s.search for s in samples])),
        templates=[to_network_input(np.stack([s.templates[k] for s in samples])) for k in range(n_templates)],
        sentences=[s.sentence for s in samples],
        boxes=torch.from_numpy(np.stack([s.box for s in samples]).astype(np.float32)),
        present=torch.tensor([s.present for s in samples], dtype=torch.bool),
        kinds=[s.kind for s in samples],
    )


# --------------------------------------------------------------------------------------------
# decoded-frame cache


class FrameCache:
    """LRU of decoded frames bounded by bytes (decoding dominates the data cost on CPU)."""

    def __init__(self, max_mb: float):
        self.max_bytes = int(max_mb * 2**20)
        self._frames: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple, seq: Sequence, index: int) -> np.ndarray:
        frame = self._frames.get(key)
        if frame is not None:
            self._frames.move_to_end(key)
            self.hits += 1
            return frame
        self.misses += 1
        frame = seq.read_frame(index)
        if frame.nbytes <= self.max_bytes:
            self._frames[key] = frame
            self._bytes += frame.nbytes
            while self._bytes > self.max_bytes:
                _, old = self._frames.popitem(last=False)
                self._bytes -= old.nbytes
        return frame


# --------------------------------------------------------------------------------------------
# the sampler


@dataclass
class _Track:
    dataset: str
    seq: Sequence
    visible: np.ndarray  # frame indices with the target visible and a valid box
    absent: np.ndarray  # frame indices without the target


def _usable_tracks(name: str, sequences: list[Sequence]) -> tuple[list[_Track], list[str]]:
    tracks, skipped = [], []
    for seq in sequences:
        n = min(len(seq.frames), len(seq.boxes))
        ok = seq.valid_mask()[:n]
        visible = np.flatnonzero(ok)
        if not seq.language.strip():
            skipped.append(f"{name}/{seq.name}: no sentence")
        elif len(visible) == 0:
            skipped.append(f"{name}/{seq.name}: no frame with a visible target")
        else:
            tracks.append(_Track(name, seq, visible, np.flatnonzero(~ok)))
    return tracks, skipped


class TrainingSampler:
    """Draws `TrainingSample`s from sequences of any loader (dict dataset name -> sequences)."""

    def __init__(
        self,
        datasets: dict[str, list[Sequence]],
        cfg: SamplingConfig,
        search_size: int,
        template_size: int,
        num_templates: int = 0,
    ):
        self.cfg = cfg
        self.search_size = int(search_size)
        self.template_size = int(template_size)
        self.num_templates = int(num_templates)
        self.tracks: dict[str, list[_Track]] = {}
        self.skipped: list[str] = []
        for name, sequences in datasets.items():
            tracks, skipped = _usable_tracks(name, sequences)
            self.skipped += skipped
            if tracks:
                self.tracks[name] = tracks
        if not self.tracks:
            raise DataError(
                f"no usable training sequence in {sorted(datasets)} "
                f"(each needs a sentence and a visible target); skipped: {self.skipped[:5]}"
            )
        self.names = sorted(self.tracks)
        self.ratios = self._ratios()
        total = cfg.local_share + cfg.global_share
        if total <= 0 or min(cfg.local_share, cfg.global_share) < 0:
            raise ValueError(f"sampling: local_share/global_share must be >= 0 with a positive sum, "
                             f"got {cfg.local_share}/{cfg.global_share}")
        self.p_local = cfg.local_share / total
        if not 0.0 <= cfg.neutral_sentence_share <= 1.0:
            raise ValueError(f"sampling.neutral_sentence_share: a share in [0, 1], got {cfg.neutral_sentence_share}")
        self.cache = FrameCache(cfg.frame_cache_mb)

    def _ratios(self) -> np.ndarray:
        given = self.cfg.dataset_ratios
        unknown = sorted(set(given) - set(self.tracks))
        if unknown:
            raise ValueError(f"sampling.dataset_ratios: unknown dataset {unknown[0]!r} (training on {self.names})")
        weights = np.array([float(given.get(n, 1.0 if not given else 0.0)) for n in self.names])
        if (weights < 0).any() or weights.sum() <= 0:
            raise ValueError(f"sampling.dataset_ratios: need non-negative weights with a positive sum, got {given}")
        return weights / weights.sum()

    def __len__(self) -> int:
        return sum(len(t) for t in self.tracks.values())

    # ---- drawing

    def sample(self, seed: int, epoch: int, index: int) -> TrainingSample:
        """Sample `index` of `epoch`: a pure function of (seed, epoch, index) and the data."""
        rng = np.random.default_rng([int(seed), int(epoch), int(index)])
        return self.draw(rng)

    def draw(self, rng: np.random.Generator) -> TrainingSample:
        name = self.names[rng.choice(len(self.names), p=self.ratios)]
        track = self.tracks[name][rng.integers(len(self.tracks[name]))]
        kind = "local" if rng.random() < self.p_local else "global"
        if kind == "global" and rng.random() < self.cfg.absent_share:
            kind = "absent"
        flip = rng.random() < self.cfg.hflip
        j = self.cfg.brightness_jitter
        brightness = rng.uniform(1 - j, 1 + j) if j > 0 else 1.0

        if kind == "absent":
            sample, frame_idx = self._absent(track, rng)
        else:
            frame_idx = int(rng.choice(track.visible))
            frame = self._frame(track, frame_idx)
            box_px = track.seq.boxes[frame_idx]
            if kind == "local":
                search, box, present = self._local(frame, box_px, rng)
            else:
                search, box, present = self._global(frame, box_px, rng)
            sample = TrainingSample(search, [], track.seq.language, box, present, kind,
                                    f"{name}/{track.seq.name}#{frame_idx}")
        sample.templates = self._templates(track, frame_idx, rng)
        if self.cfg.neutral_sentence_share > 0 and rng.random() < self.cfg.neutral_sentence_share:
            sample.sentence = self.cfg.neutral_sentence
        if self.cfg.grayscale > 0 and rng.random() < self.cfg.grayscale:
            sample.search = _grey(sample.search)
            sample.templates = [_grey(t) for t in sample.templates]
        if flip:
            sample = _flipped(sample, swap_words=self.cfg.flip_swaps_words is not False)
        if brightness != 1.0:
            sample.search = _scaled(sample.search, brightness)
            sample.templates = [_scaled(t, brightness) for t in sample.templates]
        return sample

    def _frame(self, track: _Track, index: int) -> np.ndarray:
        if self.cache.max_bytes <= 0:
            return track.seq.read_frame(index)
        return self.cache.get((track.dataset, track.seq.name, index), track.seq, index)

    def _normalized(self, view_box_px: np.ndarray) -> tuple[np.ndarray, bool]:
        x, y, w, h = view_box_px
        s = float(self.search_size)
        box = np.array([(x + w / 2) / s, (y + h / 2) / s, w / s, h / s], dtype=np.float32)
        present = bool(0.0 <= box[0] < 1.0 and 0.0 <= box[1] < 1.0 and np.isfinite(box).all())
        return (box if present else np.zeros(4, np.float32)), present

    def _local(self, frame: np.ndarray, box_px: np.ndarray, rng: np.random.Generator):
        x, y, w, h = box_px
        sj, cj = self.cfg.scale_jitter, self.cfg.center_jitter
        w_j, h_j = w * math.exp(rng.normal() * sj), h * math.exp(rng.normal() * sj)
        reach = math.sqrt(w_j * h_j) * cj
        cx = x + w / 2 + (rng.random() - 0.5) * reach
        cy = y + h / 2 + (rng.random() - 0.5) * reach
        view, t = box_view(frame, [cx - w_j / 2, cy - h_j / 2, w_j, h_j], self.cfg.search_factor, self.search_size)
        box, present = self._normalized(t.to_view(box_px))
        return view, box, present

    def _global(self, frame: np.ndarray, box_px: np.ndarray, rng: np.random.Generator):
        view, t = global_view(frame, self.search_size, letterbox=rng.random() < self.cfg.letterbox_share)
        box, present = self._normalized(t.to_view(box_px))
        return view, box, present

    def _absent(self, track: _Track, rng: np.random.Generator) -> tuple[TrainingSample, int]:
        name = f"{track.dataset}/{track.seq.name}"
        if len(track.absent):
            idx = int(rng.choice(track.absent))
            frame = self._frame(track, idx)
            view, _ = global_view(frame, self.search_size, letterbox=rng.random() < self.cfg.letterbox_share)
            return TrainingSample(view, [], track.seq.language, np.zeros(4, np.float32), False, "absent",
                                  f"{name}#{idx}"), idx
        idx = int(rng.choice(track.visible))
        frame = self._frame(track, idx)
        away = _crop_away(frame, track.seq.boxes[idx], self.search_size, rng)
        if away is not None:
            return TrainingSample(away, [], track.seq.language, np.zeros(4, np.float32), False, "absent",
                                  f"{name}#{idx}"), idx
        # the target fills too much of the frame to crop it away: a present global view instead
        view, box, present = self._global(frame, track.seq.boxes[idx], rng)
        return TrainingSample(view, [], track.seq.language, box, present, "global", f"{name}#{idx}"), idx

    def _templates(self, track: _Track, frame_idx: int, rng: np.random.Generator) -> list[np.ndarray]:
        if self.num_templates <= 0:
            return []
        gap = np.abs(track.visible - frame_idx)
        # other frames of the sequence within ±max_gap; the search frame only when nothing else is
        pool = track.visible[(gap <= self.cfg.max_gap) & (gap > 0)]
        if not len(pool):
            pool = track.visible[gap > 0] if len(track.visible) > 1 else track.visible
        out = []
        for idx in rng.choice(pool, size=self.num_templates, replace=True):
            crop, _ = box_view(self._frame(track, int(idx)), track.seq.boxes[int(idx)],
                               self.cfg.template_factor, self.template_size)
            out.append(crop)
        return out


def _crop_away(frame: np.ndarray, box_px: np.ndarray, out_size: int, rng: np.random.Generator,
               tries: int = 20) -> Optional[np.ndarray]:
    """A square crop that does not touch the target box, of a random side between half and all
    of the short frame side."""
    h, w = frame.shape[:2]
    x1, y1, bw, bh = box_px
    x2, y2 = x1 + bw, y1 + bh
    for _ in range(tries):
        side = rng.uniform(0.5, 1.0) * min(h, w)
        cx = rng.uniform(side / 2, max(side / 2, w - side / 2))
        cy = rng.uniform(side / 2, max(side / 2, h - side / 2))
        left, top = cx - side / 2, cy - side / 2
        if left >= x2 or left + side <= x1 or top >= y2 or top + side <= y1:
            view, _ = local_view(frame, (cx, cy), int(side), out_size)
            return view
    return None


def _grey(image: np.ndarray) -> np.ndarray:
    import cv2

    return np.ascontiguousarray(np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2))


def _flipped(sample: TrainingSample, swap_words: bool = True) -> TrainingSample:
    box = sample.box.copy()
    if sample.present:
        box[0] = 1.0 - box[0]
    return TrainingSample(
        np.ascontiguousarray(sample.search[:, ::-1]),
        [np.ascontiguousarray(t[:, ::-1]) for t in sample.templates],
        swap_left_right(sample.sentence) if swap_words else sample.sentence,
        box,
        sample.present,
        sample.kind,
        sample.source + ":flip",
    )


def _scaled(image: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(image.astype(np.float32) * factor, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------
# batches for a run (single process or one rank of many)


class StepBatches(torch.utils.data.Dataset):
    """Item g = this rank's share of global step g's batch (a `TrainingBatch`).

    Step g is step ``g % steps_per_epoch`` of epoch ``g // steps_per_epoch``; its global batch is
    samples [k·B, (k+1)·B) of that epoch, and rank r takes the contiguous slice
    [k·B + r·B/W, k·B + (r+1)·B/W) — a DistributedSampler-like split of the same sample list, so
    W processes see exactly the samples one process would.
    """

    def __init__(self, sampler: TrainingSampler, seed: int, global_batch: int, steps_per_epoch: int,
                 total_steps: int, rank: int = 0, world_size: int = 1):
        if global_batch % world_size:
            raise ValueError(f"batch_size {global_batch} is not divisible by {world_size} processes")
        self.sampler = sampler
        self.seed = seed
        self.global_batch = global_batch
        self.local_batch = global_batch // world_size
        self.steps_per_epoch = steps_per_epoch
        self.total_steps = total_steps
        self.rank = rank

    def __len__(self) -> int:
        return self.total_steps

    def indices(self, step: int) -> tuple[int, range]:
        epoch, k = divmod(int(step), self.steps_per_epoch)
        start = k * self.global_batch + self.rank * self.local_batch
        return epoch, range(start, start + self.local_batch)

    def __getitem__(self, step: int) -> TrainingBatch:
        epoch, idx = self.indices(step)
        return collate([self.sampler.sample(self.seed, epoch, i) for i in idx])


# --------------------------------------------------------------------------------------------
# loading


def load_training_sequences(datasets: dict[str, str], split: str | None = None,
                            splits: dict[str, str] | None = None, guard: bool = False) -> dict[str, list[Sequence]]:
    """{name: root} -> {name: usable sequences}; the loader is the name (``synth`` reads LaSOT layout).

    `splits` gives a dataset its split (`training_split`); `split` is the one for datasets it does
    not name. With `guard` (training), a benchmark's test split is refused (`SplitLeakError`).
    Damaged sequences (see `benchmarks.usability_reasons`) are left out with a warning; a dataset
    with none left is an error naming its folder.
    """
    import warnings

    from mvlm.data.benchmarks import usability_reasons

    if not datasets:
        raise DataError("no training datasets configured (train.datasets is empty)")
    splits = dict(splits or {})
    unknown = sorted(set(splits) - set(datasets))
    if unknown:
        raise DataError(f"train.splits: {unknown[0]!r} is not a training dataset (datasets: {sorted(datasets)})")
    out = {}
    for name, root in datasets.items():
        loader = _LOADER_ALIASES.get(name.lower(), name)
        usable, dropped = [], []
        for seq in training_split(name, loader, root, splits.get(name, split), guard):
            reasons = usability_reasons(seq)
            if reasons:
                dropped.append(f"{seq.name}: {'; '.join(reasons)}")
            else:
                seq.dataset = seq.dataset or name
                usable.append(seq)
        if dropped:
            warnings.warn(f"{root}: {len(dropped)} sequence(s) left out of training, e.g. {dropped[0]}", stacklevel=2)
        if not usable:
            raise DataError(f"{root}: no usable sequence for training dataset {name!r} ({loader} layout)"
                            + (f"; e.g. {dropped[0]}" if dropped else ""))
        out[name] = usable
    return out


# --------------------------------------------------------------------------------------------
# training splits


class SplitLeakError(DataError):
    """A training dataset would include a benchmark's test sequences."""


def lasot_test_names() -> list[str]:
    """The 280 LaSOT test sequences (the toolkit's testing_set.txt, in mvlm/resources/splits)."""
    from importlib import resources

    text = resources.files("mvlm").joinpath("resources/splits/lasot_testing_set.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def _name_list(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _leak(name: str, what: str, names: list[str]) -> SplitLeakError:
    shown = ", ".join(names[:5]) + (f" (+{len(names) - 5} more)" if len(names) > 5 else "")
    return SplitLeakError(f"train.datasets.{name}: {what}: {shown}. Training on a benchmark's test "
                         f"sequences leaks the test split; set train.splits.{name} to its training split")


def training_split(name: str, loader: str, root: str | Path, split: str | None, guard: bool = False) -> list[Sequence]:
    """The sequences of dataset `name` (loader `loader`) under `root` for `split`.

    `split` is the benchmark's split name (``train``) or a file listing sequence names (the
    reference's lasot_train_split.txt, a GOT-style list.txt). LaSOT ``train`` reads the root's
    training_set.txt, else takes every sequence found that is not one of the 280 test names;
    TNL2K / VastTrack ``train`` read ``<root>/train``, and a list file picks names there (under
    ``<root>/train`` when it exists). With `guard`, a test split, a list or a root holding test
    sequences, raises `SplitLeakError` naming them; the embedded benchmark (``synth``) is exempt.
    """
    from mvlm.data.benchmarks import canonical_name, load_dataset
    from mvlm.data.benchmarks import lasot as lasot_layout

    root = Path(root).expanduser()
    key = canonical_name(loader)
    list_file = Path(split).expanduser() if split is not None and Path(split).expanduser().is_file() else None
    names = _name_list(list_file) if list_file else None
    guarded = guard and name.lower() not in _LOADER_ALIASES
    if guarded and split is not None and list_file is None and split.lower() in ("test", "testing"):
        raise SplitLeakError(f"train.splits.{name}: {split!r} is the test split of {key}; training on it "
                            f"leaks the test sequences (use train)")
    if guarded and list_file is not None and list_file.name.lower() in ("testing_set.txt", "tnl2k_testing_set.txt"):
        raise SplitLeakError(f"train.splits.{name}: {list_file} is a test list; training on it leaks the test split")

    if key == "lasot":
        if names is None and split is not None and not root.joinpath(lasot_layout.GT_FILE).is_file():
            listed = lasot_layout._split_list(root, split) if split.lower() not in ("train", "training") else \
                next((p for p in (root / "training_set.txt", root / "sequence_evaluation_config" / "training_set.txt")
                      if p.is_file()), None)
            if listed is not None:
                names = _name_list(listed)
            elif split.lower() in ("train", "training"):  # the standard split: all but the 280 test names
                test = set(lasot_test_names())
                names = [n for n in lasot_layout._sequence_dirs(root) if n not in test]
            else:
                raise DataError(f"{root}: no list for LaSOT split {split!r}")
        seqs = load_dataset("lasot", root, sequences=names)
        if guarded:
            test = set(lasot_test_names())
            leaked = [s.name for s in seqs if s.name in test]
            if leaked:
                raise _leak(name, f"{len(leaked)} LaSOT test sequence(s) would be trained on", leaked)
        return seqs

    if key in ("tnl2k", "vasttrack"):
        sub = split if split is not None and list_file is None else None
        if list_file is not None and (root / "train").is_dir():
            sub = "train"
        if guarded and sub is None and (root / "test").is_dir():
            raise _leak(name, f"{root} holds a test/ folder and no split is set, so it would be trained on",
                        [p.name for p in sorted((root / "test").iterdir())][:6] or ["test/"])
        return load_dataset(key, root, split=sub, sequences=names)

    if key == "otb99_lang":
        if guarded and split is None and (root / "OTB_query_test").is_dir():
            raise _leak(name, f"{root} holds OTB_query_test/ and no split is set, so it would be trained on",
                        ["OTB_query_test/"])
        return load_dataset(key, root, split=split if list_file is None else None, sequences=names)

    return load_dataset(key, root, split=split if list_file is None else None, sequences=names)
