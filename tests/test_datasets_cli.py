"""`mvlm datasets check` through mvlm.cli.main: table, JSON keys and exit codes."""

from __future__ import annotations

import json
import shutil

import pytest

from mvlm.cli import main

pytestmark = pytest.mark.real_data

JSON_KEYS = {"name", "dataset", "frames", "gt_boxes", "visible", "has_visibility_flags", "language",
             "usable", "problems"}


def run(capsys, *argv):
    code = main(["datasets", "check", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_lasot_json_usable(real_data, capsys):
    code, out, _ = run(capsys, "lasot", real_data / "lasot", "--json")
    rows = json.loads(out)
    assert code == 0 and len(rows) == 1
    row = rows[0]
    assert set(row) == JSON_KEYS
    assert row == {"name": "airplane-1", "dataset": "lasot", "frames": 120, "gt_boxes": 120, "visible": 120,
                   "has_visibility_flags": True, "language": "white airplane landing on ground",
                   "usable": True, "problems": []}


def test_lasot_table_single_sequence_folder(real_data, capsys):
    code, out, _ = run(capsys, "lasot", real_data / "lasot" / "airplane" / "airplane-1")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split() == ["sequence", "frames", "gt", "visible", "status", "language"]
    assert lines[2].split()[:5] == ["airplane-1", "120", "120", "120", "ok"]
    assert lines[-1] == "1 sequences: 1 usable, 0 not usable"


def test_otb_plain_is_unusable_without_sentences(real_data, capsys):
    code, out, _ = run(capsys, "otb", real_data / "otb", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 1
    assert rows["Football1"]["frames"] == 74 and rows["Football1"]["gt_boxes"] == 74
    assert not any(r["usable"] for r in rows.values())
    assert any("81 frames for 74 GT rows" in p for p in rows["Football1"]["problems"])


def test_vot_with_sentence_is_usable(real_data, tmp_path, capsys):
    (tmp_path / "bag").mkdir()
    (tmp_path / "bag" / "imgs").symlink_to(real_data / "vot" / "bag" / "imgs")
    shutil.copy(real_data / "vot" / "bag" / "groundtruth.txt", tmp_path / "bag")
    (tmp_path / "bag" / "nlp.txt").write_text("a white plastic bag\n")
    code, out, _ = run(capsys, "vot", tmp_path, "--json")
    assert code == 0 and json.loads(out)[0]["gt_boxes"] == 196


def test_annotations_only_and_sequences_filter(real_data, tmp_path, capsys):
    for seq in ["Boat_video1-Done", "Cat_BBC_video_03-Done"]:
        (tmp_path / "test").mkdir(exist_ok=True)
        (tmp_path / "test" / seq).symlink_to(real_data / "tnl2k" / "revised_annotations" / seq)
    code, out, _ = run(capsys, "tnl2k", tmp_path, "--split", "test", "--json")
    assert code == 1  # no frames on disk
    assert all(any("frame folder not found" in p for p in r["problems"]) for r in json.loads(out))
    code, out, _ = run(capsys, "tnl2k", tmp_path, "--split", "test", "--annotations-only", "--json",
                       "--sequences", "Cat_BBC_video_03-Done")
    rows = json.loads(out)
    assert code == 0 and [r["name"] for r in rows] == ["Cat_BBC_video_03-Done"]
    assert rows[0] == {"name": "Cat_BBC_video_03-Done", "dataset": "tnl2k", "frames": 0, "gt_boxes": 133,
                       "visible": 133, "has_visibility_flags": False,
                       "language": "the cat standing on the hilltop", "usable": True, "problems": []}


def test_mgit_annotation_only_reports_hidden_gt(real_data, capsys):
    code, out, _ = run(capsys, "mgit", real_data / "mgit", "--annotations-only", "--split", "test",
                       "--sequences", "001")
    assert code == 1
    assert "attribute/groundtruth/001.txt: test GT is hidden upstream" in out and "UNUSABLE" in out


def test_wrong_root_unknown_name_and_bad_option(tmp_path, capsys):
    code, _, err = run(capsys, "lasot", tmp_path / "nowhere")
    assert code == 2 and f"{tmp_path / 'nowhere'}: dataset root not found" in err
    code, _, err = run(capsys, "imagenet", tmp_path)
    assert code == 2 and "unknown dataset 'imagenet'" in err
    code, _, err = run(capsys, "tnl2k", tmp_path, "--attributes", tmp_path)
    assert code == 2 and "--attributes applies to lasot only" in err
    code, _, err = run(capsys, "tnl2k", tmp_path, "--split", "val")
    assert code == 2 and "unknown TNL2K split" in err


def test_empty_root_is_exit_1(tmp_path, capsys):
    code, out, err = run(capsys, "vasttrack", tmp_path)
    assert code == 1 and "no vasttrack sequences found" in err and "0 sequences" in out


def test_help_documents_usable_rule(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["datasets", "check", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "USABLE" in out and "--annotations-only" in out and "Exit status" in out
