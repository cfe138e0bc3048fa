"""The paper's training recipes (paper/params.yaml) as a pipeline stage.

    paper_train_stage("paper/params.yaml", "train_tf", enabled=True,
                      summary="reports/paper/train_tf.json")

runs ``mvlm train --params <recipe> --section <section> --resume --summary <summary>`` (so
``processes > 1`` and torchrun behave as on the command line) and returns the summary. With
``enabled=False`` nothing is trained: the summary says so and the out_dir holds DISABLED.txt,
so the stage's outputs exist either way. docs/training.md has the commands and the DVC stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from mvlm.atomic import write_json, write_text

DEFAULT_RECIPE = "paper/params.yaml"


def write_disabled(cfg, section: str, summary: Optional[str]) -> dict:
    """The outputs of a stage that is switched off: out_dir/DISABLED.txt and the summary."""
    out = {"enabled": False, "section": section, "out_dir": cfg.out_dir}
    note = Path(cfg.out_dir) / "DISABLED.txt"
    if not any(Path(cfg.out_dir).glob("*.safetensors")):
        write_text(note, f"{section}: training is switched off (enable it to train; see docs/training.md)\n")
    if summary:
        write_json(summary, out)
    return out


def paper_train_stage(recipe: str | Path = DEFAULT_RECIPE, section: str = "train_tf", enabled: bool = True,
                      summary: Optional[str | Path] = None, overrides: tuple[str, ...] = (),
                      resume: bool = True) -> dict:
    """Train `section` of the recipe file (or, disabled, only record that it is off); the summary."""
    import json
    import tempfile

    from mvlm.cli import main

    with tempfile.TemporaryDirectory(prefix="mvlm-paper-train-") as tmp:
        target = Path(summary) if summary else Path(tmp) / "summary.json"
        args = ["train", "--params", str(recipe), "--section", section, "--no-progress",
                "--summary", str(target), "--enabled", "true" if enabled else "false"]
        for text in overrides:
            args += ["--set", text]
        if resume:
            args.append("--resume")
        code = main(args)
        if code != 0:
            raise RuntimeError(f"{recipe}:{section}: training failed (exit {code})")
        return json.loads(target.read_text())
