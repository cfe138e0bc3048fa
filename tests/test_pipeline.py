"""The whole DVC pipeline on a miniature configuration, and the explore notebook headless.

The miniature run copies the package, notebooks and dvc.yaml into a fresh git + DVC repo with a
shrunken params.yaml (a few short sequences, a few training steps, two ablation variants), runs
`dvc repro`, checks that the tables and figures exist and hold numbers, then checks that a second
`dvc repro` reruns nothing and that changing one tracker parameter reruns only the evaluation,
ablation and report stages.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(HF_HUB_OFFLINE="1", DVC_NO_ANALYTICS="1", PYTHONHASHSEED="0", CI="1")
    env["PYTHONPATH"] = str(REPO)
    return env


def _run(cmd: list[str], cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def miniature_params() -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["synth"].update(frames=24, sequences_train=4, sequences_val=1, sequences_test=3)
    for mode in ("tf", "bbox"):
        section = params[f"train_{mode}"]
        section.update(epochs=1, batch_size=8, max_minutes=0.0, warmup_steps=1, threads=1)
        section.setdefault("sampling", {})["samples_per_epoch"] = 16
    params["evaluate"]["workers"] = 1
    params["evaluate"]["datasets"] = {"synth": params["evaluate"]["datasets"]["synth"]}
    variants = params["ablate"]["variants"]
    params["ablate"]["variants"] = {"full": variants["full"], "local_only": variants["local_only"]}
    return params


@pytest.fixture(scope="module")
def pipeline_repo(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("pipeline")
    shutil.copytree(REPO / "mvlm", work / "mvlm", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "notebooks", work / "notebooks")
    shutil.copy(REPO / "dvc.yaml", work / "dvc.yaml")
    (work / "params.yaml").write_text(yaml.safe_dump(miniature_params(), sort_keys=False))
    _run(["git", "init", "-q"], work)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "add", "-A"], work)
    _run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "mini"], work)
    _run(["dvc", "init", "-q"], work)
    _run(["dvc", "config", "core.analytics", "false"], work)
    _run(["dvc", "repro"], work, timeout=1500)
    return work


@pytest.mark.slow
def test_pipeline_writes_tables_and_figures(pipeline_repo: Path):
    import pandas as pd

    from mvlm.data.sampling import load_training_sequences
    from mvlm.train import GROUNDING_VIEWS

    WHOLE_FRAME_VIEWS = ("local", "global_letterbox", "global")

    (val,) = load_training_sequences({"synth": str(pipeline_repo / "data" / "synth" / "val")})["synth"]
    visible = int(val.valid_mask()[: len(val.frames)].sum())
    reports = pipeline_repo / "reports"
    for name in ("tracking_by_language", "bbox_language", "ablations"):
        assert (reports / "tables" / f"{name}.csv").is_file()
        assert (reports / "tables" / f"{name}.md").read_text().count("|") > 10
    assert (reports / "tables" / "results.xlsx").stat().st_size > 0
    for figure in ("curves_success", "curves_precision", "calibration", "gate_timelines", "attributes",
                   "ablation", "training"):
        assert (reports / "figures" / f"{figure}.png").stat().st_size > 1000, figure
    summary = json.loads((reports / "summary.json").read_text())
    for key in ("synth_tf", "synth_bbox"):
        auc = summary["datasets"][key]["auc"]
        assert isinstance(auc, float) and 0.0 <= auc <= 100.0
    assert set(summary["ablations"]) == {"full_tf", "local_only_tf"}
    for mode in ("tf", "bbox"):  # params.yaml trains with two local DDP processes
        trained = json.loads((reports / "training" / f"{mode}_summary.json").read_text())
        assert trained["world_size"] == 2 and trained["steps"] >= 1, trained
        # grounding of the final network on the val split: 12 visible frames of its one sequence
        grounding = json.loads((reports / "training" / f"{mode}_grounding.json").read_text())["synth"]
        for run in ("sentence", "shuffled"):
            assert grounding[run]["frames"] == min(12, visible)
            assert set(GROUNDING_VIEWS) <= set(grounding[run])
            assert all(0.0 <= grounding[run][view] <= 1.0 for view in WHOLE_FRAME_VIEWS)
            assert sum(grounding[run]["frames_by_size"].values()) == min(12, visible)
    table = pd.read_csv(reports / "tables" / "grounding.csv")
    assert len(table) == 2 * 2 * len(WHOLE_FRAME_VIEWS) and table.accuracy.between(0, 1).all()
    metrics = json.loads((reports / "metrics" / "synth.json").read_text())
    assert metrics["modes"]["tf"]["scored"] == 3 and not metrics["modes"]["tf"]["failed"]
    # the full variant is the evaluated tracker: its results are copied, its scores are the same
    full = json.loads((reports / "ablations" / "full.json").read_text())["modes"]["tf"]
    local = json.loads((reports / "ablations" / "local_only.json").read_text())["modes"]["tf"]
    assert full["reused"] == {"from": str(Path("results") / "synth" / "tf"), "sequences": 3}
    assert full["scores"] == metrics["modes"]["tf"]["scores"] and "tracking_fps" not in full
    assert local["reused"] is None and local["scored"] == 3
    # the clock's figures live apart from the metrics (never compared between runs)
    timing = json.loads((reports / "timings" / "ablations_full.json").read_text())["tf"]
    assert timing["tracking_fps"] > 0 and timing["seconds"] >= 0
    for mode in ("tf", "bbox"):
        assert "train_wall_s" not in json.loads((reports / "training" / f"{mode}_summary.json").read_text())
        assert json.loads((reports / "timings" / f"train_{mode}.json").read_text())["train_wall_s"] > 0
        assert (reports / "timings" / f"train_{mode}.csv").is_file()

    success = pd.read_csv(reports / "plots" / "success.csv")
    assert len(success) == 21 * success.tracker.nunique() and success.success.between(0, 100).all()


@pytest.mark.slow
def test_second_repro_reruns_nothing(pipeline_repo: Path):
    out = _run(["dvc", "status"], pipeline_repo).stdout
    assert "up to date" in out.lower(), out
    # a benchmark run (`mvlm bench` writes reports/benchmarks/) leaves the pipeline up to date
    bench = pipeline_repo / "reports" / "benchmarks"
    bench.mkdir(parents=True, exist_ok=True)
    (bench / "tracker.json").write_text('{"fps": 123.0}\n')
    out = _run(["dvc", "status"], pipeline_repo).stdout
    assert "up to date" in out.lower(), out


@pytest.mark.slow
def test_tracker_parameter_reruns_only_downstream(pipeline_repo: Path):
    params = yaml.safe_load((pipeline_repo / "params.yaml").read_text())
    params["tracker"]["tau"] = 0.25
    (pipeline_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dry = _run(["dvc", "repro", "--dry"], pipeline_repo).stdout
    ran = {line.split("'")[1] for line in dry.splitlines() if line.startswith("Running stage")}
    assert ran and all(s.startswith(("evaluate@", "ablate@", "report")) for s in ran), ran
    assert not any(s.startswith(("prepare", "train")) for s in ran)


@pytest.mark.slow
def test_explore_notebook_runs_headless(tmp_path: Path):
    from mvlm.data.synthetic import generate_dataset

    data = tmp_path / "synth"
    generate_dataset(data, sequences=1, seed=5, size=(128, 96), frames=16)
    out_png = tmp_path / "explore.png"
    _run([str(BIN / "papermill"), str(REPO / "notebooks" / "explore.ipynb"), str(tmp_path / "explore.out.ipynb"),
          "-k", "python3", "-p", "interactive", "False", "-p", "root", str(data), "-p", "max_frames", "6",
          "-p", "checkpoint", "", "-p", "out_png", str(out_png), "--log-level", "WARNING"], tmp_path, timeout=600)
    assert out_png.stat().st_size > 1000
    # a checkpoint path that is not there stops the notebook: never a random network in its place
    missing = subprocess.run(
        [str(BIN / "papermill"), str(REPO / "notebooks" / "explore.ipynb"), str(tmp_path / "missing.out.ipynb"),
         "-k", "python3", "-p", "interactive", "False", "-p", "root", str(data), "-p", "checkpoint",
         str(tmp_path / "nowhere.safetensors"), "--log-level", "WARNING"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode != 0 and "nowhere.safetensors: checkpoint not found" in missing.stderr


def test_split_manifest_changes_exactly_when_a_file_of_the_split_does(tmp_path: Path):
    from mvlm.pipeline import split_manifest

    split = tmp_path / "test"
    (split / "a" / "img").mkdir(parents=True)
    (split / "a" / "img" / "00000001.jpg").write_bytes(b"\xff\xd8 one frame")
    (split / "a" / "groundtruth.txt").write_text("1,2,3,4\n")
    first = split_manifest(split)
    assert first["files"] == 2 and first["bytes"] == 12 + 8 and first["split"] == "test"
    assert split_manifest(split) == first
    (split / "a" / "groundtruth.txt").write_text("1,2,3,5\n")  # same size, other content
    changed = split_manifest(split)
    assert changed["md5"] != first["md5"] and changed["bytes"] == first["bytes"]
    (split / "a" / "groundtruth.txt").write_text("1,2,3,4\n")
    (split / "a" / "img" / "00000001.jpg").rename(split / "a" / "img" / "00000002.jpg")  # renamed frame
    assert split_manifest(split)["md5"] != first["md5"]
