"""Golden tests: every evaluation of tests/fixtures/metrics-golden reproduced by its profile.

Per sequence the integer hit counts must match exactly; dataset scores and curves must match the
fixture's `exact_float64` numbers to 1e-9 (0-100 scale); `error` evaluations must fail on exactly
the sequences the reference failed on, with a clear message.
"""

from __future__ import annotations

import gzip
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mvlm.evaluate import metrics as M
from mvlm.evaluate.groundtruth import load_lasot_toolkit, load_otb_toolkit, load_tnl2k_toolkit
from mvlm.evaluate.profiles import get_profile
from mvlm.evaluate.scoring import score_dataset

FIXTURE_PROFILES = {"pytracking": "pytracking", "ostrack_fork": "vl_python",
                    "matlab_toolkit_octave": "matlab", "got10k_otb": "got10k"}
SCORE_KEYS = {"auc": "auc", "pre20": "pre", "npr20": "npr", "op50": "op50", "op75": "op75",
              "npr_area": "npr_area", "pre_area": "pre_area"}
FAST_IDS = {"tnl2k/ties", "tnl2k/zero_size", "tnl2k/short", "tnl2k/missing", "tnl2k/err_nan",
            "lasot/realistic", "lasot/gt_copy", "lasot/short", "otb/multi_run", "otb/float_boxes",
            "otb99_lang/frames_from_1"}


class Golden:
    def __init__(self, root: Path, work: Path):
        self.root = root
        self.work = work
        self.spec = json.loads((root / "golden.json").read_text())
        with gzip.open(root / "per_sequence.json.gz", "rt") as fh:
            self.per_sequence = json.load(fh)
        for dataset in ("tnl2k", "lasot", "otb", "otb99_lang"):
            with tarfile.open(root / "predictions" / f"{dataset}.tar.gz") as tar:
                tar.extractall(work / "pred" / dataset, filter="data")
        with tarfile.open(root / "gt" / "tnl2k" / "annos.tar.gz") as tar:
            tar.extractall(work / "tnl2k_gt", filter="data")
        self.evaluations = {e["id"]: e for e in self.spec["evaluations"]}
        self._gt = {}

    def sequences(self, dataset: str):
        if dataset not in self._gt:
            info = self.spec["datasets"][dataset]
            names = info["sequences"]
            if dataset == "tnl2k":
                seqs = load_tnl2k_toolkit(self.work / "tnl2k_gt", names)
            elif dataset == "lasot":
                seqs = load_lasot_toolkit(self.root / "gt" / "lasot", names)
            elif dataset == "otb":
                seqs = load_otb_toolkit(self.root / "gt" / "otb", names)
            else:
                seqs = load_otb_toolkit(self.root / "gt" / "otb", names, files=info["gt"]["gt_file_by_sequence"],
                                        dataset="otb99_lang")
            self._gt[dataset] = {s.name: s for s in seqs}
        return self._gt[dataset]

    def run(self, eval_id: str, key: str):
        ev = self.evaluations[eval_id]
        profile = FIXTURE_PROFILES[key.split("+")[0]]
        by_name = self.sequences(ev["dataset"])
        seqs = [by_name[n] for n in ev["sequences"]]
        dirs = [self.work / "pred" / ev["dataset"] / d for d in ev["result_dirs"]]
        return score_dataset(seqs, dirs if len(dirs) > 1 else dirs[0], profile, skip_missing=key.endswith("+skip_missing_seq"))


@pytest.fixture(scope="session")
def golden(golden_dir, tmp_path_factory) -> Golden:
    return Golden(golden_dir, tmp_path_factory.mktemp("golden"))


def _cases(ids_filter):
    from conftest import FIXTURES

    spec = json.loads((FIXTURES / "metrics-golden" / "golden.json").read_text())
    return [(e["id"], key) for e in spec["evaluations"] for key in e["results"] if ids_filter(e["id"])]


def check(golden: Golden, eval_id: str, key: str) -> None:
    expected = golden.evaluations[eval_id]["results"][key]
    result = golden.run(eval_id, key)
    if expected["status"] == "error":
        assert not result.ok and result.scores() is None
        assert set(result.failures) == set(expected["failing_sequences"]), result.failures
        for name, msg in result.failures.items():
            assert name in msg or "result" in msg.lower(), msg
        return
    assert result.ok, result.failures
    per_seq = golden.per_sequence[eval_id][key]
    runs = [per_seq["runs"][k] for k in sorted(per_seq["runs"], key=int)] if "runs" in per_seq else [per_seq]
    expected_names = [n for n in golden.evaluations[eval_id]["sequences"] if runs[0].get(n) is not None]
    assert result.names == expected_names
    assert len(result.counts) == len(runs)
    for counts, ref in zip(result.counts, runs):
        for i, name in enumerate(result.names):
            assert int(result.n_frames[i]) == ref[name]["n_frames"], name
            np.testing.assert_array_equal(counts["success"][i], ref[name]["success_counts"], err_msg=name)
            np.testing.assert_array_equal(counts["precision"][i], ref[name]["precision_counts"], err_msg=name)
            if "norm_precision_counts" in ref[name]:
                np.testing.assert_array_equal(counts["norm_precision"][i], ref[name]["norm_precision_counts"], err_msg=name)
    exact = expected["exact_float64"]
    scores = result.scores()
    for fixture_key, ours in SCORE_KEYS.items():
        if fixture_key in exact["scores"]:
            assert scores[ours] == pytest.approx(exact["scores"][fixture_key], abs=1e-9), fixture_key
    curves = result.curves()
    for name, values in exact["curves"].items():
        np.testing.assert_allclose(curves[name], values, rtol=0, atol=1e-9, err_msg=name)
    if key.split("+")[0] in ("pytracking", "ostrack_fork"):  # the reference's own float32 numbers
        for fixture_key, ours in SCORE_KEYS.items():
            if fixture_key in expected["scores"]:
                assert scores[ours] == pytest.approx(expected["scores"][fixture_key], abs=1e-4)


@pytest.mark.parametrize("eval_id,key", _cases(lambda i: i in FAST_IDS))
def test_golden_fast_subset(golden, eval_id, key):
    check(golden, eval_id, key)


@pytest.mark.slow
@pytest.mark.parametrize("eval_id,key", _cases(lambda i: i not in FAST_IDS))
def test_golden_full_sweep(golden, eval_id, key):
    check(golden, eval_id, key)


def test_thresholds_are_the_fixture_doubles(golden):
    th = golden.spec["thresholds"]
    for fixture_name, ours in FIXTURE_PROFILES.items():
        prof = get_profile(ours)
        for kind, values in th[fixture_name].items():
            got = prof.thresholds[kind]
            assert [v.hex() for v in got] == golden.spec["thresholds_hex"][fixture_name][kind], (fixture_name, kind)
    assert M.overlap_thresholds_torch()[13] == 0.6500000000000001
    assert M.overlap_thresholds_linspace()[13] == 0.65


def test_fixture_aliases_resolve():
    for fixture_name, ours in FIXTURE_PROFILES.items():
        assert get_profile(fixture_name).name == ours
