"""A checkpoint without a model config inside (the released-file layout) loads through the tracker
spec with an explicit model section, and is refused with a clear message without one."""

import numpy as np
import pytest
import torch

from mvlm.config import model_config
from mvlm.model.checkpoint import CheckpointError
from mvlm.model.net import build_model
from mvlm.track.tracker import TrackerSpec, build_tracker


@pytest.fixture(scope="module")
def released_style(tmp_path_factory):
    torch.manual_seed(3)
    net = build_model(model_config(preset="tiny"))
    path = tmp_path_factory.mktemp("released") / "MVLM_TF.pth.tar"
    torch.save({"epoch": 60, "net_type": "MVLM", "net": net.state_dict(), "optimizer": None}, path)
    return path, net


def test_released_layout_needs_a_model_section(released_style):
    path, _ = released_style
    with pytest.raises(CheckpointError, match="pass a preset"):
        build_tracker(TrackerSpec(checkpoint=str(path)))


def test_released_layout_tracks_with_model_section(released_style):
    path, net = released_style
    built = build_tracker(TrackerSpec(checkpoint=str(path), checkpoint_model={"preset": "tiny", "mode": "tf"},
                                      tracker_preset="tf", compat="reference"))
    assert not built.random_init
    loaded = built.tracker.net.state_dict()
    for key, value in net.state_dict().items():
        assert torch.equal(loaded[key], value), key
    frame = np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8)
    first = built.tracker.initialize(frame, "the red square")
    assert first.mode == "global" and first.box.shape == (4,)
    assert np.isfinite(built.tracker.track(frame).box).all()
