"""The paper pipeline (paper/dvc.yaml, docs/reproduce.md): released-format base checkpoints with
random weights, a random CLIP ViT-L/14 text tower, the real frames of ../shared/data/real in the
LaSOT and OTB99-Lang layouts, `dvc repro paper/dvc.yaml` in a fresh git + DVC repo (frames capped),
then the tables; and each missing or wrong file as one clear error before any work."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from mvlm.config import ConfigError, model_config
from mvlm.paper import (PaperError, ablate_stage, check_checkpoint, check_text_weights, evaluate_stage,
                        evaluate_trained_stage, inputs_stage)

from released_files import random_released_state, write_clip_l14_text, write_released
from test_paper_recipe import MICRO, _toy
from test_pipeline import REPO, _run

OTB = ("Crossing",)
SENTENCES = {"Couple": "two people walking side by side on the road",
             "Crossing": "the person crossing the street"}


def _config(tmp_path: Path, **changes) -> dict:
    (tmp_path / "ckpt.pth.tar").write_bytes(b"x")
    (tmp_path / "clip.pt").write_bytes(b"x")
    (tmp_path / "lasot").mkdir(exist_ok=True)
    paper = {"checkpoints": {"tf": str(tmp_path / "ckpt.pth.tar")}, "text_weights": str(tmp_path / "clip.pt"),
             "datasets": {"lasot": {"root": str(tmp_path / "lasot")}}, "out": str(tmp_path / "out"),
             "run": {"device": "cpu"}}
    paper.update(changes)
    return paper


# --------------------------------------------------------------------------------------------
# fast: a missing or wrong file is one clear error naming it, before any work


@pytest.mark.parametrize("what, change, message", [
    ("checkpoint", {"checkpoints": {"tf": "/nowhere/MVLM_TF.pth.tar"}},
     "paper.checkpoints.tf: /nowhere/MVLM_TF.pth.tar: checkpoint file not found"),
    ("text weights", {"text_weights": "/nowhere/ViT-L-14.pt"},
     "paper.text_weights: /nowhere/ViT-L-14.pt: CLIP text weights file not found"),
    ("text weights unset", {"text_weights": None}, "paper.text_weights: not set"),
    ("dataset root", {"datasets": {"lasot": {"root": "/nowhere/LaSOT"}}},
     "paper.datasets.lasot.root: /nowhere/LaSOT: dataset folder not found"),
])
def test_missing_path_is_one_error_before_work(tmp_path, what, change, message):
    paper = _config(tmp_path, **change)
    for stage in (lambda: evaluate_stage("lasot", "tf", "reference", paper),
                  lambda: ablate_stage("released", {**paper, "ablate": {"dataset": "lasot",
                                                                       "variants": {"released": {}}}})):
        with pytest.raises(PaperError, match=message.replace(".", r"\.")):
            stage()
    assert not (tmp_path / "out" / "results").exists() or not any((tmp_path / "out" / "results").rglob("*.txt"))
    assert not (tmp_path / "out" / "reports").exists()
    if what != "dataset root":
        with pytest.raises(PaperError, match=message.replace(".", r"\.")):
            inputs_stage(paper)


def test_unconfigured_mode_is_recorded_not_run(tmp_path):
    paper = _config(tmp_path)
    entry = evaluate_stage("lasot", "bbox", "reference", paper)
    assert entry["not_run"] == "paper.checkpoints.bbox is not configured"
    assert json.loads((tmp_path / "out" / "reports" / "metrics" / "lasot-bbox-reference.json").read_text()) == entry


def test_wrong_checkpoint_and_text_weights_name_the_file(tmp_path):
    from safetensors.torch import save_file

    wrong = tmp_path / "MVLM_TF.pth.tar"
    torch.save({"net": {"encoder.body.cls_token": torch.zeros(1, 1, 64)}}, wrong)
    with pytest.raises(PaperError, match=r"paper\.checkpoints\.tf: .*MVLM_TF\.pth\.tar: does not fit the paper's network"):
        check_checkpoint("tf", str(wrong))
    garbage = tmp_path / "garbage.pth.tar"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(PaperError, match=r"garbage\.pth\.tar: not a readable checkpoint"):
        check_checkpoint("tf", str(garbage))
    small = tmp_path / "clip_b.safetensors"  # a CLIP text tower, but not ViT-L/14's
    save_file({"token_embedding.weight": torch.zeros(49408, 64), "positional_embedding": torch.zeros(77, 64),
               "transformer.resblocks.0.ln_1.weight": torch.ones(64)}, str(small))
    with pytest.raises(PaperError, match=r"paper\.text_weights: .*clip_b\.safetensors: not the CLIP ViT-L/14 text tower"):
        check_text_weights(str(small))
    with pytest.raises(PaperError, match=r"paper\.text_weights: .*MVLM_TF\.pth\.tar: .*no CLIP text tower"):
        check_text_weights(str(wrong))


def test_shipped_params_resolve_and_variants_are_valid_tracker_settings():
    from mvlm.config import tracker_config
    from mvlm.paper import load_config

    cfg = load_config(yaml.safe_load((REPO / "paper" / "params.yaml").read_text())["paper"])
    assert set(cfg.datasets) == {"lasot", "tnl2k", "otb99_lang", "mgit"}
    assert cfg.datasets["tnl2k"].presets == {"tf": "tf_tnl2k"} and not cfg.datasets["mgit"].score
    assert cfg.compats == ["reference", "corrected"]
    for name, variant in cfg.ablate.variants.items():
        assert name.replace("_", "").isalnum(), name  # a DVC param path: no dots
        settings = {k: v for k, v in variant.items() if k != "compat"}
        # the released settings: none of the embedded pipeline's CPU heuristics
        cfg_t = tracker_config(settings, preset="tf")
        assert (cfg_t.size_damping, cfg_t.global_vs_local, cfg_t.refine_global, cfg_t.shot_cut_threshold,
                cfg_t.target_scale_tiles) == (1.0, False, False, None, False)


def _recipe(tmp_path: Path, enabled: bool, mode: str = "tf") -> Path:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"training": {"enabled": enabled, "sections": ["train_tf"]},
                                      "train_tf": {"mode": mode, "out_dir": str(tmp_path / "m")}}))
    return recipe


def test_trained_evaluation_is_not_run_while_training_is_off(tmp_path):
    paper = _config(tmp_path)
    entry = evaluate_trained_stage("train_tf", "lasot", "reference", paper, _recipe(tmp_path, False))
    assert entry["not_run"].startswith("training.enabled is false") and entry["run"] == "lasot-train_tf-reference"
    assert (tmp_path / "out" / "reports" / "metrics" / "lasot-train_tf-reference.json").is_file()
    with pytest.raises(ConfigError, match="'train_bbox' is not one of training.sections"):
        evaluate_trained_stage("train_bbox", "lasot", "reference", paper, _recipe(tmp_path, False))


def test_trained_evaluation_names_a_missing_or_wrong_network(tmp_path):
    from mvlm.model.checkpoint import save_checkpoint
    from mvlm.model.net import build_model

    paper = _config(tmp_path)
    with pytest.raises(PaperError, match=r"m/final\.safetensors: no trained network of train_tf"):
        evaluate_trained_stage("train_tf", "lasot", "reference", paper, _recipe(tmp_path, True))
    net = build_model(model_config({"template_free": False, "num_templates": 2}, preset="tiny"))
    save_checkpoint(net, tmp_path / "m" / "final.safetensors", mode="bbox")
    with pytest.raises(PaperError, match="not a suite checkpoint of mode tf"):
        evaluate_trained_stage("train_tf", "lasot", "reference", paper, _recipe(tmp_path, True))
    assert not (tmp_path / "out" / "reports").exists()


# --------------------------------------------------------------------------------------------
# slow: the whole paper pipeline on real frames


def _mgit_tree(real: Path, root: Path) -> Path:
    """An MGIT tree with one test video (3 LaSOT frames under MGIT names), its real sentence
    sheet, a split table of that one id, and no test GT: hidden, as upstream."""
    mgit = root / "MGIT"
    frames = mgit / "data" / "test" / "001"
    frames.mkdir(parents=True)
    for i in range(3):
        (frames / f"{i:06d}.jpg").symlink_to(real / "lasot" / "airplane" / "airplane-1" / "img" / f"{i + 1:08d}.jpg")
    (mgit / "mgit_nlp").mkdir()
    (mgit / "mgit_nlp" / "001.xlsx").symlink_to(real / "mgit" / "mgit_nlp" / "001.xlsx")
    split = {"train": [], "val": [], "test": ["001"]}
    (mgit / "mgit.json").write_text(json.dumps({"full": split, "tiny": split}))
    return mgit


def _real_trees(real: Path, root: Path) -> tuple[Path, Path]:
    """LaSOT tree (airplane-1 linked, a one-line testing_set.txt) and an OTB99-Lang tree (videos
    linked under OTB_videos/, sentences written: the OTB99-Lang query files are not here)."""
    lasot = root / "LaSOT"
    (lasot / "airplane").mkdir(parents=True)
    (lasot / "airplane" / "airplane-1").symlink_to(real / "lasot" / "airplane" / "airplane-1")
    (lasot / "testing_set.txt").write_text("airplane-1\n")
    otb = root / "OTB99-Lang"
    (otb / "OTB_videos").mkdir(parents=True)
    (otb / "OTB_query_test").mkdir()
    for name in OTB:
        (otb / "OTB_videos" / name).symlink_to(real / "otb" / name)
        (otb / "OTB_query_test" / f"{name}.txt").write_text(SENTENCES[name] + "\n")
    return lasot, otb


@pytest.fixture(scope="module")
def paper_repo(tmp_path_factory, real_data) -> Path:
    files = tmp_path_factory.mktemp("files")
    for seed, mode in enumerate(("tf", "bbox")):
        write_released(files / f"MVLM_{mode.upper()}.pth.tar", random_released_state(seed, 100), 100)
    write_clip_l14_text(files / "ViT-L-14.safetensors")
    lasot, otb = _real_trees(real_data, tmp_path_factory.mktemp("data"))
    work = tmp_path_factory.mktemp("paper_repo")
    shutil.copytree(REPO / "mvlm", work / "mvlm", ignore=shutil.ignore_patterns("__pycache__"))
    (work / "paper").mkdir()
    shutil.copytree(REPO / "paper" / "notebooks", work / "paper" / "notebooks")
    shutil.copy(REPO / "paper" / "dvc.yaml", work / "paper" / "dvc.yaml")
    params = yaml.safe_load((REPO / "paper" / "params.yaml").read_text())
    paper = params["paper"]
    paper["checkpoints"] = {m: str(files / f"MVLM_{m.upper()}.pth.tar") for m in ("tf", "bbox")}
    paper["text_weights"] = str(files / "ViT-L-14.safetensors")
    mgit = _mgit_tree(real_data, tmp_path_factory.mktemp("data_mgit"))
    paper["datasets"] = {"lasot": {"root": str(lasot)}, "otb99_lang": {"root": str(otb)},
                         "mgit": {"root": str(mgit), "score": False}}
    paper["compats"] = ["reference"]
    # 3 frames per sequence: 6 evaluation runs (one sequence each), 3 of the trained network and one
    # new ablation run
    paper["run"] = {"device": "cpu", "gpus": 0, "workers": 1, "max_frames": 3, "max_sequences": 0}
    variants = paper["ablate"]["variants"]
    paper["ablate"]["variants"] = {k: variants[k] for k in ("released", "alpha_05")}
    # training switched on for one section: the paper's TF recipe at a micro size on toy data,
    # then its network evaluated beside the released one
    params["training"] = {"enabled": True, "sections": ["train_tf"]}
    params["train_tf"].update(
        preset="tiny", model=MICRO, datasets={"synth": str(_toy(tmp_path_factory.mktemp("toy")))}, splits={},
        epochs=1, batch_size=8, num_workers=0, device="cpu", threads=1, lr_drop_epoch=0)
    params["train_tf"]["sampling"].update(dataset_ratios={}, samples_per_epoch=24, frame_cache_mb=4)
    (work / "paper" / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False, allow_unicode=True))
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    _run(["git", "init", "-q"], work)
    _run(git + ["add", "-A"], work)
    _run(git + ["commit", "-qm", "paper"], work)
    _run(["dvc", "init", "-q"], work)
    _run(["dvc", "config", "core.analytics", "false"], work)
    _run(["dvc", "repro", "paper/dvc.yaml"], work, timeout=1200)
    return work


@pytest.mark.slow  # ~4 min on 2 cores: about 20 stages, base-size networks on CPU, a micro training run
def test_paper_pipeline_on_real_frames(paper_repo: Path):
    import pandas as pd

    reports = paper_repo / "paper" / "reports"
    inputs = {p.stem: json.loads(p.read_text()) for p in (paper_repo / "paper" / "inputs").glob("*.json")}
    assert set(inputs) == {"checkpoint_tf", "checkpoint_bbox", "text_weights", "dataset_lasot", "dataset_otb99_lang",
                           "dataset_mgit"}
    assert inputs["dataset_lasot"]["sequences"] == 1 and inputs["dataset_otb99_lang"]["sequences"] == 1
    sha = inputs["checkpoint_tf"]["sha256"][:8]
    for dataset, n in (("lasot", 1), ("otb99_lang", 1)):
        for mode in ("tf", "bbox"):
            m = json.loads((reports / "metrics" / f"{dataset}-{mode}-reference.json").read_text())
            assert m["failed"] == [] and len(m["tracked"]) == n, m
            assert m["preset"] == mode and m["model"]["file"] == f"MVLM_{mode.upper()}.pth.tar"
            assert 0.0 <= m["scores"]["auc"] <= 100.0
            meta = json.loads(next((paper_repo / "paper" / "results" / f"{dataset}-{mode}-reference")
                                   .glob("*_meta.json")).read_text())
            assert meta["frames"] == 3 and meta["config"]["tracker"]["size_damping"] == 1.0
            assert meta["config"]["tracker"]["compat"] == "reference"
    table = pd.read_csv(reports / "tables" / "tracking_by_language.csv")
    ours = table[table.source == "ours"]
    assert list(ours.tracker)[0] == f"MVLM_TF.pth.tar sha256:{sha}, reference, first 3 frames"  # then the trained
    assert set(ours.columns) >= {"LASOT AUC", "OTB99_LANG AUC", "LASOT profile"}
    assert ours["LASOT profile"].iloc[0] == "vl_python"
    published = table[(table.source == "published") & (table.tracker == "MVLM")]
    assert published["LASOT AUC"].iloc[0] == 60.7
    ablations = pd.read_csv(reports / "tables" / "ablations.csv")
    assert set(ablations.variant) == {"released", "alpha_05"}
    assert ablations.set_index("variant").loc["alpha_05", "swept"] == "α = 0.5"
    released = json.loads((reports / "ablations" / "released.json").read_text())
    assert released["reused"] == 1  # the released settings: the evaluation's results, copied
    for dataset in ("lasot", "otb99_lang"):
        for kind in ("success", "precision"):
            assert (reports / "figures" / f"{dataset}_{kind}.png").stat().st_size > 1000
    assert "## Tracking by language" in (reports / "report.md").read_text()


@pytest.mark.slow
def test_mgit_with_hidden_test_gt_gives_results_and_a_submission(paper_repo: Path, tmp_path):
    reports, results = paper_repo / "paper" / "reports", paper_repo / "paper" / "results"
    tf = json.loads((reports / "metrics" / "mgit-tf-reference.json").read_text())
    assert tf["scored"] is False and tf["tracked"] == ["001"] and tf["failed"] == [] and "scores" not in tf
    assert len((results / "mgit-tf-reference" / "001.txt").read_text().splitlines()) == 3
    box = json.loads((reports / "metrics" / "mgit-bbox-reference.json").read_text())
    assert box["failed"] == ["001"]  # a box start needs the first frame's GT row, hidden here
    failure = json.loads((results / "mgit-bbox-reference" / "failures.json").read_text())[0]
    assert "no GT box for the first frame" in failure["error"]
    summary = json.loads((reports / "summary.json").read_text())
    assert "mgit-tf-reference" in summary["results_only"] and "mgit" not in summary["datasets"]
    assert "mvlm submit mgit --results" in (reports / "report.md").read_text()
    mgit_root = yaml.safe_load((paper_repo / "paper" / "params.yaml").read_text())["paper"]["datasets"]["mgit"]["root"]
    _run(["mvlm", "submit", "mgit", "--results", str(results / "mgit-tf-reference"), "--out",
          str(tmp_path / "mgit.zip"), "--root", mgit_root], paper_repo)
    import zipfile

    with zipfile.ZipFile(tmp_path / "mgit.zip") as z:
        assert sorted(n for n in z.namelist() if n.endswith(".txt")) == ["result/MVLM_001.txt", "time/MVLM_001.txt"]


@pytest.mark.slow
def test_trained_network_is_evaluated_beside_the_released_one(paper_repo: Path):
    import pandas as pd

    reports = paper_repo / "paper" / "reports"
    assert json.loads((reports / "training" / "train_tf.json").read_text())["steps"] == 3
    final = paper_repo / "paper" / "models" / "train_tf" / "final.safetensors"
    sha = hashlib.sha256(final.read_bytes()).hexdigest()[:8]
    for dataset in ("lasot", "otb99_lang"):
        m = json.loads((reports / "metrics" / f"{dataset}-train_tf-reference.json").read_text())
        assert m["failed"] == [] and m["mode"] == "tf" and m["section"] == "train_tf", m
        assert m["model"] == {"file": "train_tf/final.safetensors", "sha256": m["model"]["sha256"]}
        assert m["model"]["sha256"].startswith(sha) and 0.0 <= m["scores"]["auc"] <= 100.0
        meta = json.loads(next((paper_repo / "paper" / "results" / f"{dataset}-train_tf-reference")
                               .glob("*_meta.json")).read_text())
        assert meta["frames"] == 3 and meta["config"]["checkpoint"].endswith("paper/models/train_tf/final.safetensors")
    table = pd.read_csv(reports / "tables" / "tracking_by_language.csv")
    ours = list(table[table.source == "ours"].tracker)
    assert f"train_tf/final.safetensors sha256:{sha}, reference, first 3 frames" in ours and len(ours) == 2


@pytest.mark.slow
def test_replacing_a_checkpoint_reruns_only_what_depends_on_it(paper_repo: Path):
    out = _run(["dvc", "status", "paper/dvc.yaml"], paper_repo).stdout
    stale = {line.strip().rstrip(":") for line in out.splitlines() if line.startswith("paper/dvc.yaml:")}
    assert all(s.split(":")[1].startswith(("inputs", "dataset@")) for s in stale), out  # always checked
    params = paper_repo / "paper" / "params.yaml"
    bbox = Path(yaml.safe_load(params.read_text())["paper"]["checkpoints"]["bbox"])
    write_released(bbox, random_released_state(7, 100), 100)  # other weights, same name
    _run(["dvc", "repro", "paper/dvc.yaml:inputs"], paper_repo)
    out = _run(["dvc", "status", "paper/dvc.yaml"], paper_repo).stdout
    stale = {line.strip().rstrip(":").split(":")[1] for line in out.splitlines() if line.startswith("paper/dvc.yaml:")}
    evaluations = {s for s in stale if s.startswith("evaluate@")}
    assert evaluations == {"evaluate@lasot-bbox-reference", "evaluate@otb99_lang-bbox-reference",
                           "evaluate@mgit-bbox-reference"}, out
    assert not any(s.startswith("ablate@") for s in stale), out  # the ablations run the TF network


def test_row_labels_and_paper_value_marks():
    from mvlm.paper import paper_value_marks, row_label

    entry = {"model": {"file": "MVLM_TF.pth.tar", "sha256": "0123456789abcdef"}, "compat": "reference",
             "max_frames": 0, "preset": "tf_tnl2k", "overrides": {"alpha": 0.7, "omega": 0.2, "memory": False}}
    assert row_label(entry) == "MVLM_TF.pth.tar sha256:01234567, reference"
    assert row_label({**entry, "max_frames": 5}).endswith(", first 5 frames")
    assert paper_value_marks(entry) == "α = 0.7 (paper); ω = 0.2"
