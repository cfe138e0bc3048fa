"""Interactive exploration of one sequence: run the tracker, scrub frames, watch κ and the gate.

`notebooks/explore.ipynb` calls `explorer(...)` (ipywidgets) when interactive, and always
`run_sequence(...)` + `plot_run(...)` so a headless run still writes a static figure.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from mvlm.data.sequence import Sequence

CONFIDENCE_KNOBS = ("alpha", "omega", "lam", "tau", "psi_out")


@dataclass
class SequenceRun:
    """A tracker run over one sequence: per-frame boxes (x,y,w,h px), κ and modes."""

    sequence: Sequence
    text: str
    boxes: np.ndarray
    kappa: list[Optional[float]]
    modes: list[str]
    info: dict[str, Any] = field(default_factory=dict)

    def iou(self) -> np.ndarray:
        """Per-frame IoU with the ground truth (NaN where the GT box is not valid)."""
        import torch
        from torchvision.ops import box_iou

        gt = self.sequence.boxes[: len(self.boxes)]
        to_xyxy = lambda b: torch.as_tensor(np.c_[b[:, :2], b[:, :2] + b[:, 2:]])  # noqa: E731
        iou = box_iou(to_xyxy(self.boxes), to_xyxy(gt)).diagonal().numpy()
        return np.where(self.sequence.valid_mask()[: len(iou)], iou, np.nan)


def load_sequences(loader: str, root: str | Path) -> list[Sequence]:
    from mvlm.data.benchmarks import load_dataset

    return load_dataset(loader, root)


def load_widget_tracker(checkpoint: Optional[str] = None, mode: str = "tf", compat: str = "corrected",
                        overrides: Optional[dict[str, Any]] = None, checkpoint_preset: Optional[str] = None,
                        checkpoint_mode: Optional[str] = None, text_weights: Optional[str] = None,
                        random_init: bool = False):
    """The widget's tracker through the one model loader. A checkpoint without a config inside
    (released .pth.tar) needs `checkpoint_preset` and `checkpoint_mode` (tf | bbox; docs/weights.md);
    a missing or unfitting file is an error, never a random network."""
    from mvlm.model.metadata import model_section
    from mvlm.track.tracker import TrackerSpec, build_tracker

    settings = tuple(f"{k}={v}" for k, v in (overrides or {}).items())
    return build_tracker(
        TrackerSpec(
            checkpoint=checkpoint, model_preset="tiny", compat=compat, overrides=settings,
            tracker_preset=None if checkpoint else mode,
            checkpoint_model=model_section(checkpoint_preset, checkpoint_mode, text_weights, random_init),
        )
    )


def run_sequence(
    sequence: Sequence,
    text: Optional[str] = None,
    checkpoint: Optional[str] = None,
    mode: str = "tf",
    compat: str = "corrected",
    overrides: Optional[dict[str, Any]] = None,
    max_frames: Optional[int] = None,
    weights: Optional[dict[str, Any]] = None,
) -> SequenceRun:
    """Track `sequence` (template-free from the sentence, or from the GT box in `bbox` mode).
    `weights`: how to load the checkpoint (see `load_widget_tracker`)."""
    built = load_widget_tracker(checkpoint, mode, compat, overrides, **(weights or {}))
    tracker = built.tracker
    sentence = text if text is not None else sequence.language
    n = len(sequence.frames) if max_frames is None else min(max_frames, len(sequence.frames))
    boxes, kappa, modes = [], [], []
    for index in range(n):
        frame = sequence.read_frame(index)
        if index == 0:
            box = sequence.init_box if mode == "bbox" else None
            result = tracker.initialize(frame, sentence, box=box)
        else:
            result = tracker.track(frame)
        boxes.append(np.asarray(result.box, dtype=np.float64))
        kappa.append(result.kappa)
        modes.append(result.mode)
    return SequenceRun(sequence, sentence, np.array(boxes).reshape(-1, 4), kappa, modes, built.info)


def plot_run(run: SequenceRun, out_path: Optional[str | Path] = None, frames: int = 4):
    """Static figure: a few frames with GT (green) and prediction (red), then κ/mode/IoU over time."""
    from matplotlib.figure import Figure  # outside pyplot: the notebook's backend is left alone
    from matplotlib.patches import Rectangle

    n = len(run.boxes)
    picks = np.linspace(0, n - 1, num=min(frames, n)).astype(int)
    fig = Figure(figsize=(3.2 * len(picks), 5.6))
    grid = fig.add_gridspec(2, len(picks), height_ratios=[1.3, 1])
    for col, index in enumerate(picks):
        ax = fig.add_subplot(grid[0, col])
        ax.imshow(run.sequence.read_frame(int(index)))
        for box, colour in ((run.sequence.boxes[index], "lime"), (run.boxes[index], "red")):
            ax.add_patch(Rectangle(box[:2], box[2], box[3], fill=False, edgecolor=colour, linewidth=1.5))
        k = run.kappa[index]
        ax.set_title(f"#{index + 1} {run.modes[index]} κ={'-' if k is None else f'{k:.2f}'}", fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(grid[1, :])
    t = np.arange(1, n + 1)
    kappa = np.array([np.nan if k is None else k for k in run.kappa], dtype=float)
    ax.plot(t, kappa, label="κ of the chosen box", color="tab:blue")
    ax.plot(t, run.iou(), label="IoU with GT", color="tab:green", alpha=0.8)
    is_global = np.array([m == "global" for m in run.modes])
    ax.fill_between(t, 0, 1, where=is_global, color="tab:orange", alpha=0.2, step="mid",
                    transform=ax.get_xaxis_transform(), label="global pass")
    if run.sequence.visible is not None:
        hidden = ~run.sequence.visible[:n]
        ax.fill_between(t, 0, 0.05, where=hidden, color="black", alpha=0.6, step="mid",
                        transform=ax.get_xaxis_transform(), label="target not visible")
    ax.set_xlabel("frame")
    ax.set_xlim(1, n)
    ax.legend(loc="lower left", fontsize=8, ncol=4)
    ax.set_title(f"{run.sequence.name}: \"{run.text}\"", fontsize=10)
    fig.tight_layout()
    if out_path is not None:
        Path(out_path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out_path, dpi=110)
    return fig


def explorer(sequences: list[Sequence], checkpoint: Optional[str] = None, **weights: Any):
    """ipywidgets UI: pick a sequence, edit the sentence, choose compat, move α ω λ τ ψ, run, scrub.
    `weights`: checkpoint_preset, checkpoint_mode, text_weights, random_init (see
    `load_widget_tracker`); the checkpoint is checked here, before the UI is built."""
    import ipywidgets as w

    from mvlm.config import tracker_config

    if checkpoint:
        load_widget_tracker(checkpoint, **weights)  # a bad file fails now, not at the first run
    by_name = {s.name: s for s in sequences}
    defaults = tracker_config(preset="tf")
    pick = w.Dropdown(options=list(by_name), description="sequence")
    text = w.Text(value=sequences[0].language if sequences else "", description="sentence",
                  layout=w.Layout(width="60%"))
    mode = w.ToggleButtons(options=["tf", "bbox"], description="mode")
    compat = w.ToggleButtons(options=["corrected", "reference"], description="compat")
    sliders = {
        k: w.FloatSlider(value=getattr(defaults, k), min=-1.0 if k == "tau" else 0.0, max=1.0,
                         step=0.05, description=k)
        for k in CONFIDENCE_KNOBS
    }
    run_button = w.Button(description="Run tracker", button_style="primary")
    scrub = w.IntSlider(value=1, min=1, max=1, description="frame")
    out = w.Output()  # progress and errors of a run
    # the figure as PNG bytes in an Image widget: shown the same under any matplotlib backend
    image = w.Image(format="png", layout=w.Layout(width="420px"))
    state: dict[str, SequenceRun] = {}

    def on_pick(change):
        text.value = by_name[change["new"]].language

    def draw(*_):
        run = state.get("run")
        if run is None:
            return
        fig = _frame_figure(run, scrub.value - 1)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        image.value = buffer.getvalue()

    def on_run(_):
        seq = by_name[pick.value]
        overrides = {k: s.value for k, s in sliders.items()}
        with out:  # an error of the run is shown here, not lost in the kernel's log
            out.clear_output()
            print("tracking...")
            state["run"] = run_sequence(seq, text.value, checkpoint, mode.value, compat.value, overrides,
                                        weights=weights)
            scrub.max = len(state["run"].boxes)
            draw()
            out.clear_output()

    pick.observe(on_pick, names="value")
    run_button.on_click(on_run)
    scrub.observe(draw, names="value")
    ui = w.VBox([pick, text, w.HBox([mode, compat]), w.HBox(list(sliders.values())[:3]),
                 w.HBox(list(sliders.values())[3:]), run_button, scrub, out, image])
    return ui


def _frame_figure(run: SequenceRun, index: int):
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    fig = Figure(figsize=(6, 6))
    ax, tl = fig.subplots(2, 1, height_ratios=[3, 1])
    ax.imshow(run.sequence.read_frame(index))
    for box, colour in ((run.sequence.boxes[index], "lime"), (run.boxes[index], "red")):
        ax.add_patch(Rectangle(box[:2], box[2], box[3], fill=False, edgecolor=colour, linewidth=1.5))
    k = run.kappa[index]
    ax.set_title(f"frame {index + 1}: {run.modes[index]}, κ={'-' if k is None else f'{k:.3f}'}")
    ax.axis("off")
    kappa = [np.nan if v is None else v for v in run.kappa]
    tl.plot(np.arange(1, len(kappa) + 1), kappa)
    tl.axvline(index + 1, color="red")
    tl.set_ylabel("κ")
    fig.tight_layout()
    return fig
