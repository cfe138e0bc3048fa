"""Protocol profiles: the rules that differ between the field's evaluators, selectable by name.

The formulas (IoU, centre error, curves) are shared; what moves published numbers is everything
around them: which GT frames are valid, what an absent frame counts as, whether frame 1 is a free
hit, how short/long/zero-size/NaN predictions are treated, which thresholds and which NPR. Each
profile below states those rules in plain words (`Profile.description`) and as switches that
`mvlm.evaluate.scoring` applies. docs/metrics.md holds the same text for readers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np

from mvlm.evaluate import metrics as M

# Datasets whose reference loader gives no visibility flags: the Python profiles ignore flags
# there even if our loader provides some (TNL2K absent frames are "invalid", not "invisible").
NO_VISIBILITY_DATASETS = frozenset({"tnl2k", "otb", "otb99_lang", "otb99lang", "mgit", "videocube"})
# Datasets scored with pytracking's LaSOT special cases (short predictions raise; CLE/NCLE of
# invisible frames become +inf). `synth` is our generated benchmark in the LaSOT layout.
LASOT_RULE_DATASETS = frozenset({"lasot", "synth"})


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    description: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    # GT validity: "wh" (w > 0 and h > 0), "xywh" (all four > 0), "none" (every frame scored)
    validity: Literal["wh", "xywh", "none"] = "wh"
    use_visibility: bool = True  # AND the validity with the loader's visible flags
    lasot_invisible_inf: bool = True  # on LaSOT, invisible frames: CLE = NCLE = +inf
    invalid_cle: float = np.inf  # sentinel of invalid frames; -1 is a hit, inf a miss
    invalid_ncle: float = -1.0
    # absent flags: "ignore", "numerator" (removed from the numerator only), "drop" (removed)
    absent: Literal["ignore", "numerator", "drop"] = "ignore"
    first_frame_gt: bool = True
    # prediction checks: "raise" (NaN or negative w/h anywhere aborts), "repair", "none"
    invalid_predictions: Literal["raise", "repair", "none"] = "raise"
    # which rows (frames >= 2) take the previous row: "zero_wh" (w == 0 or h == 0),
    # "nonpositive_or_nan" (w <= 0, h <= 0 or NaN), "none"
    repair: Literal["zero_wh", "nonpositive_or_nan", "none"] = "zero_wh"
    # length: "python" (LaSOT: short raises; else pad with 0,0,0,0 rows; long truncated),
    # "short_raises" (long truncated), "equal" (any mismatch raises)
    length: Literal["python", "short_raises", "equal"] = "python"
    nan_gt: Literal["raise", "drop"] = "raise"
    iou: Literal["inclusive", "continuous"] = "inclusive"
    overlap_thresholds: tuple[float, ...] = field(default_factory=lambda: tuple(M.overlap_thresholds_torch()))
    center_thresholds: tuple[float, ...] = field(default_factory=lambda: tuple(M.center_thresholds(50)))
    norm_thresholds: Optional[tuple[float, ...]] = field(default_factory=lambda: tuple(M.norm_center_thresholds()))
    center_compare: Literal["<=", "<"] = "<="
    npr: Literal["at20", "inside", "none"] = "at20"
    drop_zero_sequences: bool = False  # MATLAB: sequences whose whole curve sums to <= eps are dropped
    clip_to_image: bool = False  # MGIT clips predictions to the image before scoring
    truncate_on_write: bool = True  # the field's runner writes int(x) toward zero (save_bb)
    success_rate_index: int = 10  # OP50 / SR index in the success curve

    @property
    def thresholds(self) -> dict[str, np.ndarray]:
        out = {"overlap": np.array(self.overlap_thresholds), "center": np.array(self.center_thresholds)}
        if self.norm_thresholds is not None:
            out["center_norm"] = np.array(self.norm_thresholds)
        return out

    def uses_visibility(self, dataset: str) -> bool:
        return self.use_visibility and dataset.lower() not in NO_VISIBILITY_DATASETS

    def help_text(self) -> str:
        return f"{self.name}: {self.title}\n" + "\n".join(f"  - {line}" for line in self.description)


_PY_COMMON = (
    "Predictions: any NaN or negative w/h in a file is an error for that sequence ('Invalid results'); "
    "a row (frame >= 2) with w == 0 or h == 0 takes the previous, already repaired row.",
    "Length: on LaSOT longer predictions are truncated and shorter ones are an error; elsewhere longer "
    "ones are truncated and shorter ones are padded with 0,0,0,0 rows (not repaired, scored as misses).",
    "Frame 1 is overwritten with the GT box (a free hit, also for language-only runs).",
    "Invalid frames: IoU = -1 (miss), centre error = +inf (miss), normalized centre error = -1 (a HIT). "
    "On LaSOT, frames that are not visible then get centre errors +inf (misses).",
    "Denominator = all GT rows. Sequences count equally. AUC = mean of the 21-point success curve "
    "(IoU > t, t = torch.arange(0, 1.05, 0.05)); PRE = precision at 20 px (CLE <= d); NPR = normalized "
    "precision at 0.20. A missing result file is an error unless --skip-missing drops the sequence.",
    "NaN in the GT is an error.",
)

PROFILES: dict[str, Profile] = {}


def _register(profile: Profile) -> Profile:
    PROFILES[profile.name] = profile
    return profile


_register(
    Profile(
        name="vl_python",
        title="OSTrack fork used by every published VL tracker (JointNLT, UVLTrack, SUTrack, DUTrack, All-in-One)",
        aliases=("ostrack_fork", "ostrack", "vl"),
        validity="wh",
        description=(
            "A GT frame is valid if w > 0 and h > 0 (and visible where the dataset has flags, e.g. LaSOT); "
            "x <= 0 or y <= 0 does not make it invalid.",
            *_PY_COMMON,
        ),
    )
)
_register(
    Profile(
        name="pytracking",
        title="visionml/pytracking analysis code",
        aliases=("visionml",),
        validity="xywh",
        description=(
            "A GT frame is valid only if x > 0, y > 0, w > 0 and h > 0 (and visible where the dataset has "
            "flags). This is the only difference to vl_python; on TNL2K it lowers AUC by up to ~3 points.",
            *_PY_COMMON,
        ),
    )
)
_register(
    Profile(
        name="matlab",
        title="official LaSOT / TNL2K MATLAB toolkits (as run under GNU Octave)",
        aliases=("matlab_toolkit_octave", "matlab_official", "octave"),
        validity="xywh",
        use_visibility=False,
        lasot_invisible_inf=False,
        invalid_cle=-1.0,
        invalid_ncle=-1.0,
        absent="numerator",
        invalid_predictions="repair",
        repair="nonpositive_or_nan",
        length="short_raises",
        overlap_thresholds=tuple(M.overlap_thresholds_linspace(21)),
        drop_zero_sequences=True,
        description=(
            "Predictions (frames >= 2) with NaN, w <= 0 or h <= 0 take the previous row; no error.",
            "Longer predictions are truncated; shorter ones are an error (index out of bound).",
            "Frame 1 is overwritten with the GT box.",
            "A GT frame is valid only if all four values are > 0. Invalid frames: IoU = -1 (miss) but "
            "centre errors = -1, a HIT for PRE and NPR.",
            "Frames flagged absent (TNL2K annos/absent, LaSOT absent.txt or full_occlusion|out_of_view) "
            "are removed from the numerator; the denominator stays all GT rows (so they are misses).",
            "Sequences whose whole curve sums to 0 are dropped from that curve's mean.",
            "Thresholds 0:0.05:1 (IoU >), 0..50 px (<=), 0..0.5 (<=). AUC = curve mean; PRE = P(20 px); "
            "NPR = NP(0.20); npr_area = mean of the NP curve (the number in the TNL2K paper plots).",
        ),
    )
)
_register(
    Profile(
        name="got10k",
        title="got10k toolkit ExperimentOTB (PyPI 0.1.3)",
        aliases=("got10k_otb",),
        validity="none",
        use_visibility=False,
        lasot_invisible_inf=False,
        invalid_predictions="none",
        repair="none",
        length="equal",
        iou="continuous",
        overlap_thresholds=tuple(M.overlap_thresholds_linspace(21)),
        norm_thresholds=None,
        npr="none",
        truncate_on_write=False,
        description=(
            "Every GT frame is scored (no validity rule, no absent handling); predictions are not checked "
            "or repaired; a length mismatch is an error.",
            "Frame 1 is overwritten with the GT box.",
            "IoU with the continuous formula, inter / (union + eps), clipped to [0, 1].",
            "Thresholds linspace(0, 1, 21) (IoU >) and 0..50 px (<=). AUC = curve mean, PRE = P(20 px). "
            "No normalized precision (npr is null).",
        ),
    )
)
_register(
    Profile(
        name="mgit",
        title="MGIT / VideoCube toolkit rules (no golden numbers; hand-made tests only)",
        aliases=("videocube",),
        validity="none",
        use_visibility=False,
        lasot_invisible_inf=False,
        absent="drop",
        first_frame_gt=False,
        invalid_predictions="none",
        repair="none",
        length="equal",
        nan_gt="drop",
        iou="continuous",
        overlap_thresholds=tuple(M.overlap_thresholds_linspace(101)),
        center_thresholds=tuple(M.center_thresholds(400)),
        norm_thresholds=None,
        center_compare="<",
        npr="inside",
        clip_to_image=True,
        truncate_on_write=False,
        success_rate_index=50,
        description=(
            "Predictions are clipped to the image (needs the frame size in the sequence meta).",
            "Frames flagged absent or shot-cut, and frames with NaN GT, are removed entirely (denominator too).",
            "Frame 1 is NOT overwritten; a length mismatch is an error.",
            "IoU thresholds linspace(0, 1, 101) (>); AUC = curve mean; SR = curve at 0.50.",
            "Precision thresholds 0..400 px with strict <; PRE = P(20 px).",
            "NPR = fraction of frames whose predicted centre lies inside the GT box, averaged over the "
            "sequences where it is non-zero.",
        ),
    )
)

_ALIASES = {alias: p.name for p in PROFILES.values() for alias in (p.name, *p.aliases)}
DEFAULT_PROFILE = "vl_python"


def get_profile(name: str | Profile) -> Profile:
    """Profile by name or alias (the golden fixture's names are aliases); clear error otherwise."""
    if isinstance(name, Profile):
        return name
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown scoring profile {name!r}; choose one of {', '.join(PROFILES)} (aliases: "
                         f"{', '.join(sorted(a for a in _ALIASES if a not in PROFILES))})")
    return PROFILES[_ALIASES[key]]
