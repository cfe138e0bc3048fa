"""Benchmark loaders on the real files in ../shared/data/real and on damaged copies in tmp_path."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from mvlm.data.benchmarks import LOADERS, load_dataset, usability_reasons
from mvlm.data.benchmarks import lasot, mgit, otb99lang, tnl2k, vasttrack, vot
from mvlm.data.benchmarks.common import list_frames, problem_level
from mvlm.data.sequence import DataError

pytestmark = pytest.mark.real_data


def levels(seq, level):
    return [p for p in seq.problems if problem_level(p) == level]


def only(seqs):
    assert len(seqs) == 1, [s.name for s in seqs]
    return seqs[0]


def link_frames(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> None:
    """Frame folder of symlinks (no image copies) so one frame can be removed."""
    dst.mkdir(parents=True)
    for f in os.listdir(src):
        if f not in skip:
            (dst / f).symlink_to(src / f)


def empty_frames(folder: Path, numbers, width: int = 4, ext: str = ".jpg") -> None:
    """Zero-byte frame files: loaders never decode, so names are all that matters."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        (folder / f"{n:0{width}d}{ext}").write_bytes(b"")


# ------------------------------------------------------------------------------------ registry


def test_registry_names_and_aliases(real_data):
    assert set(LOADERS) == {"lasot", "tnl2k", "otb99_lang", "mgit", "vasttrack", "vot"}
    seqs = load_dataset("otb", real_data / "otb", sequences=["Girl"])
    assert [s.name for s in seqs] == ["Girl"] and seqs[0].dataset == "otb99_lang"


def test_registry_errors(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        load_dataset("nope", tmp_path)
    with pytest.raises(DataError, match=r"missing.*dataset root not found"):
        load_dataset("lasot", tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(DataError, match="not a folder"):
        load_dataset("tnl2k", tmp_path / "file.txt")


def test_list_frames_numeric_order_and_filters(tmp_path):
    for name in ["10.jpg", "9.jpg", "100.png", "notes.txt", "Thumbs.db", "b.jpg", "a2.jpg", "a10.jpg"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.jpg").mkdir()  # a folder named like an image is not a frame
    assert [p.name for p in list_frames(tmp_path)] == ["9.jpg", "10.jpg", "100.png", "a2.jpg", "a10.jpg", "b.jpg"]
    assert list_frames(tmp_path / "absent") == []


# ------------------------------------------------------------------------------------ LaSOT


def test_lasot_real_airplane(real_data):
    seq = only(lasot.load(real_data / "lasot",
                          attributes_dir=real_data / "lasot_toolkit" / "annos" / "att"))
    assert seq.name == "airplane-1" and seq.dataset == "lasot"
    assert len(seq.frames) == 120 and len(seq) == 120
    assert seq.frames[0].name == "00000001.jpg" and seq.frames[-1].name == "00000120.jpg"
    np.testing.assert_array_equal(seq.boxes[:2], [[367, 101, 41, 16], [366, 103, 45, 16]])
    assert seq.language == "white airplane landing on ground"
    assert seq.visible is not None and seq.visible.dtype == bool and seq.visible.sum() == 120
    assert {k for k, v in seq.attributes.items() if v} == {"POC", "ROT", "SV", "LR"}
    assert seq.problems == [] and usability_reasons(seq) == []


def test_lasot_single_sequence_and_class_folder(real_data):
    a = only(lasot.load(real_data / "lasot" / "airplane" / "airplane-1"))
    b = only(lasot.load(real_data / "lasot" / "airplane"))
    assert a.name == b.name == "airplane-1" and len(a.frames) == len(b.frames) == 120


def test_lasot_split_list(real_data, tmp_path):
    (tmp_path / "airplane").symlink_to(real_data / "lasot" / "airplane")
    shutil.copy(real_data / "lasot_toolkit" / "sequence_evaluation_config" / "testing_set.txt", tmp_path)
    seqs = lasot.load(tmp_path, split="test", require_frames=False)
    assert len(seqs) == 280
    by_name = {s.name: s for s in seqs}
    assert usability_reasons(by_name["airplane-1"]) == []
    missing = by_name["airplane-13"]
    assert missing.problems == [f"error: {tmp_path / 'airplane' / 'airplane-13'}: sequence folder not found"]
    # no training list at the root: every sequence found
    assert [s.name for s in lasot.load(tmp_path, split="train")] == ["airplane-1"]
    with pytest.raises(DataError, match="unknown LaSOT split 'dev'"):
        lasot.load(tmp_path, split="dev")
    (tmp_path / "validation_set.txt").write_text("airplane-1\n")
    assert [s.name for s in lasot.load(tmp_path, split="val")] == ["airplane-1"]


@pytest.fixture
def lasot_copy(real_data, tmp_path):
    """airplane-1 with its text files copied and its frames symlinked, ready to damage."""
    src = real_data / "lasot" / "airplane" / "airplane-1"
    dst = tmp_path / "airplane" / "airplane-1"
    dst.mkdir(parents=True)
    for name in ["groundtruth.txt", "nlp.txt", "full_occlusion.txt", "out_of_view.txt"]:
        shutil.copy(src / name, dst / name)
    link_frames(src / "img", dst / "img")
    return dst


def _replace_line(path: Path, lineno: int, text: str) -> None:
    lines = path.read_text().splitlines()
    lines[lineno - 1] = text
    path.write_text("\n".join(lines) + "\n")


def test_lasot_damaged_missing_frame(lasot_copy):
    (lasot_copy / "img" / "00000007.jpg").unlink()
    seq = lasot.load_sequence(lasot_copy)
    errors = levels(seq, "error")
    assert any("1 missing frame files (first: 00000007.jpg)" in e and str(lasot_copy / "img") in e for e in errors)
    assert any("119 frames for 120 GT rows" in e for e in errors)
    assert len(seq.frames) == 119 and usability_reasons(seq)
    # annotations only: the same damage is not a problem
    seq = lasot.load_sequence(lasot_copy, require_frames=False)
    assert seq.problems == [] and usability_reasons(seq, require_frames=False) == []


def test_lasot_damaged_gt_rows(lasot_copy):
    gt = lasot_copy / "groundtruth.txt"
    _replace_line(gt, 5, "nan,nan,nan,nan")
    _replace_line(gt, 9, "10,20,-3,4")
    _replace_line(gt, 11, "0,0,0,0")
    _replace_line(gt, 12, "5,5,0,7")
    seq = lasot.load_sequence(gt.parent)
    assert seq.boxes.shape == (120, 4)
    assert f"error: {gt}: NaN/inf values in 1 rows (first lines 5)" in seq.problems
    assert f"error: {gt}: negative width/height in 1 rows (first lines 9)" in seq.problems
    assert f"info: {gt}: zero-size boxes (target absent) in 2 rows (first lines 11, 12)" in seq.problems


def test_lasot_zero_rows_alone_keep_sequence_usable(lasot_copy):
    gt = lasot_copy / "groundtruth.txt"
    _replace_line(gt, 30, "0,0,0,0")
    seq = lasot.load_sequence(lasot_copy)
    assert levels(seq, "error") == [] and len(levels(seq, "info")) == 1
    assert usability_reasons(seq) == []
    assert seq.valid_mask().sum() == 119


def test_lasot_unparseable_gt(lasot_copy):
    gt = lasot_copy / "groundtruth.txt"
    _replace_line(gt, 3, "1,2,x,4")
    seq = lasot.load_sequence(lasot_copy)
    assert seq.boxes.shape == (0, 4)
    assert any(p.startswith(f"error: {gt}:3: not a number") for p in seq.problems)
    assert "no GT boxes" in usability_reasons(seq)


def test_lasot_sentence_problems(lasot_copy):
    nlp = lasot_copy / "nlp.txt"
    nlp.write_text("  \n")
    assert f"error: {nlp}: empty sentence" in lasot.load_sequence(lasot_copy).problems
    nlp.write_bytes(b"caf\xe9 au lait")
    seq = lasot.load_sequence(lasot_copy)
    assert seq.language == "" and any(p.startswith(f"error: {nlp}: not UTF-8") for p in seq.problems)
    nlp.unlink()
    assert f"error: {nlp}: file not found" in lasot.load_sequence(lasot_copy).problems


def test_lasot_flags(lasot_copy):
    (lasot_copy / "out_of_view.txt").write_text(",".join(["0"] * 3 + ["1"] + ["0"] * 116))
    seq = lasot.load_sequence(lasot_copy)
    assert seq.visible.sum() == 119 and not seq.visible[3]
    (lasot_copy / "full_occlusion.txt").write_text(",".join(["0"] * 119))
    seq = lasot.load_sequence(lasot_copy)
    assert seq.visible is None
    assert f"error: {lasot_copy / 'full_occlusion.txt'}: 119 flags for 120 GT rows" in seq.problems
    (lasot_copy / "full_occlusion.txt").unlink()
    seq = lasot.load_sequence(lasot_copy)
    assert seq.visible is None and f"error: {lasot_copy / 'full_occlusion.txt'}: file not found" in seq.problems


def test_lasot_attributes_json(lasot_copy):
    (lasot_copy / "attributes.json").write_text('{"FOC": 1, "OV": 0, "SV": true}')
    assert lasot.load_sequence(lasot_copy).attributes == {"FOC": True, "OV": False, "SV": True}
    (lasot_copy / "attributes.json").write_text('["FM", "LR"]')
    assert lasot.load_sequence(lasot_copy).attributes == {"FM": True, "LR": True}
    (lasot_copy / "attributes.json").write_text("{broken")
    seq = lasot.load_sequence(lasot_copy)
    assert any(p.startswith(f"error: {lasot_copy / 'attributes.json'}: unreadable attributes") for p in seq.problems)


# ------------------------------------------------------------------------------------ TNL2K


@pytest.fixture
def tnl2k_root(real_data, tmp_path):
    """TNL2K layout from the toolkit's frame-less annotation folders (symlinks, no copies)."""
    root = tmp_path / "TNL2K"
    for split, source in [("train", "revised_annotations"), ("test", "updated_4_video_text_annotation")]:
        (root / split).mkdir(parents=True)
        for seq in (real_data / "tnl2k" / source).iterdir():
            (root / split / seq.name).symlink_to(seq)
    return root


def test_tnl2k_real_annotations(real_data, tnl2k_root):
    train = tnl2k.load(tnl2k_root, split="train", require_frames=False)
    assert len(train) == 12
    boat = next(s for s in train if s.name == "Boat_video1-Done")
    raw = (real_data / "tnl2k" / "revised_annotations" / "Boat_video1-Done" / "language.txt").read_text()
    assert raw == "the house on the river bank "  # trailing space, no newline
    assert boat.language == "the house on the river bank"
    assert boat.boxes.shape == (470, 4) and boat.visible is None and boat.frames == []
    np.testing.assert_array_equal(boat.boxes[0], [338, 157, 69, 62])
    assert levels(boat, "info") and not levels(boat, "error")  # absent frames are 0,0,0,0
    assert next(s for s in train if s.name == "monitor_bikeyellow").boxes.shape == (929, 4)
    test = tnl2k.load(tnl2k_root, split="test", require_frames=False)
    by_name = {s.name: s for s in test}
    assert set(by_name) == {"Fight_video_6-Done", "INF_woman46", "INF_womanpink", "NBA2k_Kawayi_video_15"}
    gt = tnl2k_root / "test" / "INF_womanpink" / "groundtruth.txt"
    assert f"error: {gt}: file not found" in by_name["INF_womanpink"].problems
    assert len(tnl2k.load(tnl2k_root, require_frames=False)) == 16
    with pytest.raises(DataError, match="unknown TNL2K split"):
        tnl2k.load(tnl2k_root, split="val")


def test_tnl2k_with_frames(real_data, tmp_path):
    seq_dir = tmp_path / "test" / "Boat_video1-Done"
    shutil.copytree(real_data / "tnl2k" / "revised_annotations" / "Boat_video1-Done", seq_dir)
    empty_frames(seq_dir / "imgs", range(1, 471), width=5, ext=".png")
    seq = only(tnl2k.load(tmp_path, split="test"))
    assert len(seq.frames) == 470 and seq.frames[0].name == "00001.png"
    assert not levels(seq, "error") and usability_reasons(seq) == []
    (seq_dir / "imgs" / "00470.png").unlink()
    seq = tnl2k.load_sequence(seq_dir)
    assert f"error: {seq_dir / 'imgs'}: 469 frames for 470 GT rows in {seq_dir / 'groundtruth.txt'}" in seq.problems
    shutil.rmtree(seq_dir / "imgs")
    assert f"error: {seq_dir / 'imgs'}: frame folder not found" in tnl2k.load_sequence(seq_dir).problems
    assert tnl2k.load_sequence(seq_dir, require_frames=False).problems == levels(seq, "info")


# ------------------------------------------------------------------------------------ OTB


def test_otb_plain_real_layout(real_data):
    seqs = {s.name: s for s in otb99lang.load(real_data / "otb")}
    assert set(seqs) == {"Couple", "Crossing", "Football1", "Girl"}
    football = seqs["Football1"]  # comma-separated, 74 GT lines for 81 images
    assert len(football.frames) == 74 and len(football) == 74
    gt = real_data / "otb" / "Football1" / "groundtruth_rect.txt"
    assert (f"warning: {real_data / 'otb' / 'Football1' / 'img'}: 81 frames for 74 GT rows in {gt}; "
            f"frames cut to the first 74") in football.problems
    np.testing.assert_array_equal(football.boxes[0], [153, 105, 26, 43])
    girl = seqs["Girl"]  # tab-separated, CRLF
    assert len(girl) == 500 and len(girl.frames) == 500
    np.testing.assert_array_equal(girl.boxes[0], [57, 21, 31, 45])
    couple = seqs["Couple"]  # tab-separated
    np.testing.assert_array_equal(couple.boxes[0], [51, 47, 25, 62])
    assert couple.attributes == {"SV": True, "DEF": True, "FM": True, "OPR": True, "BC": True}
    for seq in seqs.values():  # no sentences in plain OTB
        assert seq.language == "" and seq.visible is None
        assert any("no sentence" in p and str(real_data / "otb" / seq.name) in p for p in levels(seq, "error"))


def test_otb_single_video_folder(real_data):
    seq = only(otb99lang.load(real_data / "otb" / "Football1"))
    assert seq.name == "Football1" and len(seq.frames) == 74


@pytest.fixture
def otb_lang_root(real_data, tmp_path):
    """OTB99-Lang layout: real videos linked under OTB_videos/, plus multi-target and offsets."""
    root = tmp_path / "OTB99"
    videos = root / "OTB_videos"
    videos.mkdir(parents=True)
    for name in ["Football1", "Girl"]:
        (videos / name).symlink_to(real_data / "otb" / name)
    couple_gt = (real_data / "otb" / "Couple" / "groundtruth_rect.txt").read_text()
    for video, targets in [("Human4", [2]), ("Skating2", [1, 2])]:
        (videos / video).mkdir()
        (videos / video / "img").symlink_to(real_data / "otb" / "Couple" / "img")
        for t in targets:
            (videos / video / f"groundtruth_rect.{t}.txt").write_text(couple_gt)
    # annotation starting at image 5 (cfg.json), at image 3 (known table), at the first image (0247)
    for video, first, last, cfg in [("Late", 1, 10, '{"startFrame": 5}'), ("BlurCar3", 1, 10, None),
                                    ("NoFirst", 247, 250, None)]:
        empty_frames(videos / video / "img", range(first, last + 1))
        n = 6 if video == "Late" else 8 if video == "BlurCar3" else 4
        (videos / video / "groundtruth_rect.txt").write_text("1,2,3,4\n" * n)
        if cfg:
            (videos / video / "cfg.json").write_text(cfg)
    sentences = {"test": {"Football1": "the man, in white, running", "Human4_2": "a person walking",
                          "Skating2-1": "the skater in black", "Late": "x", "BlurCar3": "car",
                          "NoFirst": "n"},
                 "train": {"Girl": "a girl's face", "Skating2-2": "the woman skating"}}
    for split, items in sentences.items():
        (root / f"OTB_query_{split}").mkdir()
        for name, text in items.items():
            (root / f"OTB_query_{split}" / f"{name}.txt").write_text(text + "\n")
    return root


def test_otb99_lang_layout(otb_lang_root):
    test = {s.name: s for s in otb99lang.load(otb_lang_root, split="test")}
    assert set(test) == {"Football1", "Human4_2", "Skating2-1", "Late", "BlurCar3", "NoFirst"}
    assert test["Football1"].language == "the man, in white, running"  # commas stay a sentence
    human = test["Human4_2"]
    assert human.meta["gt"].endswith("Human4/groundtruth_rect.2.txt") and len(human.frames) == 140
    assert test["Skating2-1"].meta["gt"].endswith("Skating2/groundtruth_rect.1.txt")
    assert [f.name for f in test["Late"].frames] == [f"{n:04d}.jpg" for n in range(5, 11)]
    assert [f.name for f in test["BlurCar3"].frames] == [f"{n:04d}.jpg" for n in range(3, 11)]
    assert [f.name for f in test["NoFirst"].frames] == ["0247.jpg", "0248.jpg", "0249.jpg", "0250.jpg"]
    for name in ["Human4_2", "Skating2-1", "Late", "BlurCar3", "NoFirst"]:
        assert usability_reasons(test[name]) == [], test[name].problems
    train = {s.name: s for s in otb99lang.load(otb_lang_root, split="train")}
    assert set(train) == {"Girl", "Skating2-2"} and train["Girl"].language == "a girl's face"
    assert len(otb99lang.load(otb_lang_root)) == 8
    # plain enumeration of the same videos names the extra targets Video-k
    plain = [s.name for s in otb99lang.load(otb_lang_root / "OTB_videos")]
    assert {"Human4-2", "Skating2-1", "Skating2-2"} <= set(plain)


def test_otb99_lang_missing_pieces(otb_lang_root):
    (otb_lang_root / "OTB_query_test" / "Ghost.txt").write_text("nobody\n")
    (otb_lang_root / "OTB_query_test" / "Late.txt").write_text("")
    seqs = {s.name: s for s in otb99lang.load(otb_lang_root, split="test")}
    assert seqs["Ghost"].problems == [f"error: {otb_lang_root / 'OTB_videos' / 'Ghost'}: sequence folder not found"]
    assert f"error: {otb_lang_root / 'OTB_query_test' / 'Late.txt'}: empty sentence" in seqs["Late"].problems
    shutil.rmtree(otb_lang_root / "OTB_query_train")
    with pytest.raises(DataError, match="OTB_query_train: sentence folder not found"):
        otb99lang.load(otb_lang_root, split="train")


# ------------------------------------------------------------------------------------ VOT


def test_vot_bag_polygons(real_data):
    seq = only(vot.load(real_data / "vot"))
    assert seq.name == "bag" and len(seq.frames) == 196 and len(seq) == 196
    # 291.827,203.603,396.382,264.289,442.173,185.397,337.618,124.711 -> bounding box
    np.testing.assert_allclose(seq.boxes[0], [291.827, 124.711, 150.346, 139.578], atol=1e-9)
    assert seq.visible is None and seq.language == ""
    assert levels(seq, "error") == [f"error: {real_data / 'vot' / 'bag'}: no sentence (nlp.txt or language.txt not found)"]


def test_vot_with_sentence_and_list(real_data, tmp_path):
    seq_dir = tmp_path / "bag"
    seq_dir.mkdir()
    (seq_dir / "imgs").symlink_to(real_data / "vot" / "bag" / "imgs")
    shutil.copy(real_data / "vot" / "bag" / "groundtruth.txt", seq_dir)
    (seq_dir / "nlp.txt").write_text("a plastic bag blown by the wind\n")
    (tmp_path / "list.txt").write_text("bag\nmissing\n")
    seqs = vot.load(tmp_path)
    assert [s.name for s in seqs] == ["bag", "missing"]
    assert seqs[0].language == "a plastic bag blown by the wind" and usability_reasons(seqs[0]) == []
    assert usability_reasons(seqs[1])


# ------------------------------------------------------------------------------------ MGIT


def test_mgit_real_spreadsheet_with_formulas(real_data):
    seq = only(mgit.load(real_data / "mgit", sequences=["001"], require_frames=False))
    assert seq.meta["split"] == "test" and seq.visible is None
    assert seq.language.startswith("A male secret agent wearing a black suit walks in the washroom, and stands")
    assert seq.language.endswith("after talking with the brown-suit woman.")
    story = seq.meta["levels"][-1]
    assert story["level"] == "story" and story["length"] == 9033  # '=D14-C14+1' read as its value
    assert [lv["length"] for lv in seq.meta["levels"][:2]] == [1247, 549]
    gt = real_data / "mgit" / "attribute" / "groundtruth" / "001.txt"
    assert seq.problems == [f"warning: {gt}: test GT is hidden upstream: results only (docs/mgit.md)"]
    assert usability_reasons(seq, require_gt=False) == [] and usability_reasons(seq) == ["no GT boxes"]


def test_mgit_split_tables(real_data):
    assert len(mgit.read_split_ids(real_data / "mgit", "test", "tiny")) == 30
    assert len(mgit.read_split_ids(real_data / "mgit", None, "full")) == 500
    with pytest.raises(DataError, match="unknown MGIT split"):
        mgit.load(real_data / "mgit", split="dev")


@pytest.fixture
def mgit_root(real_data, tmp_path):
    root = tmp_path / "MGIT"
    (root / "mgit_nlp").mkdir(parents=True)
    shutil.copy(real_data / "mgit" / "mgit.json", root)
    for seq_id in ["001", "006"]:
        (root / "mgit_nlp" / f"{seq_id}.xlsx").symlink_to(real_data / "mgit" / "mgit_nlp" / f"{seq_id}.xlsx")
    (root / "attribute" / "groundtruth").mkdir(parents=True)
    for seq_id in ["001", "006"]:
        (root / "attribute" / "groundtruth" / f"{seq_id}.txt").write_text("10,20,30,40\n" * 5)
    empty_frames(root / "data" / "test" / "001" / "frame_001", range(0, 5), width=6)  # README layout
    empty_frames(root / "data" / "test" / "006", range(0, 5), width=6)  # flat layout
    return root


def test_mgit_both_frame_layouts(mgit_root):
    seqs = mgit.load(mgit_root, split="test", sequences=["001", "006"])
    assert [s.name for s in seqs] == ["001", "006"]
    for seq in seqs:
        assert len(seq.frames) == 5 and seq.frames[0].name == "000000.jpg"
        assert seq.problems == [] and usability_reasons(seq) == []


def test_mgit_test_gt_partial_or_missing_never_shortens_the_video(mgit_root):
    gt = mgit_root / "attribute" / "groundtruth"
    (gt / "001.txt").write_text("10,20,30,40\n")  # the first frame's box only
    (gt / "006.txt").unlink()
    first, missing = mgit.load(mgit_root, split="test", sequences=["001", "006"])
    assert len(first.frames) == 5 and len(first.boxes) == 1 and first.problems == []
    assert len(missing.frames) == 5 and len(missing.boxes) == 0
    assert [p.split(": ")[0] for p in missing.problems] == ["warning"]
    assert usability_reasons(missing, require_gt=False) == []


def test_mgit_corrupt_and_formula_sheets(mgit_root):
    import openpyxl

    bad = mgit_root / "mgit_nlp" / "001.xlsx"
    bad.unlink()
    bad.write_bytes(b"PK\x03\x04 this is not a workbook")
    seq = only(mgit.load(mgit_root, split="test", sequences=["001"]))
    assert seq.language == "" and any(p.startswith(f"error: {bad}: unreadable spreadsheet") for p in seq.problems)

    # a formula in the description cell saved without a cached value reads as empty, never as '=A2'
    formula = mgit_root / "mgit_nlp" / "006.xlsx"
    formula.unlink()
    wb = openpyxl.Workbook()
    wb.active.append(["level", "number", "description"])
    wb.active.append(["story", 1, "=A2"])
    wb.save(formula)
    seq = only(mgit.load(mgit_root, split="test", sequences=["006"]))
    assert seq.language == "" and f"error: {formula}: empty description in the last row (row 2)" in seq.problems

    wb = openpyxl.Workbook()
    wb.active.append(["level", "text"])
    wb.active.append(["story", "hello"])
    wb.save(formula)
    seq = only(mgit.load(mgit_root, split="test", sequences=["006"]))
    assert any(p.startswith(f"error: {formula}: no 'description' column") for p in seq.problems)


# ------------------------------------------------------------------------------------ VastTrack


def test_vasttrack_layout(tmp_path):
    seq_dir = tmp_path / "test" / "Zebra" / "Zebra-3"
    empty_frames(seq_dir / "imgs", range(1, 4), width=5)
    (seq_dir / "Groundtruth.txt").write_text("1,2,3,4\n0,0,0,0\n5,6,7,8\n")
    (seq_dir / "nlp.txt").write_text("a zebra grazing\n")
    seq = only(vasttrack.load(tmp_path, split="test"))
    assert seq.name == "Zebra-3" and seq.meta["class"] == "Zebra" and len(seq.frames) == 3
    np.testing.assert_array_equal(seq.visible, [True, False, True])
    assert levels(seq, "info") and usability_reasons(seq) == []
    assert only(vasttrack.load(seq_dir)).name == "Zebra-3"
    with pytest.raises(DataError, match="split folder not found"):
        vasttrack.load(tmp_path, split="train")
