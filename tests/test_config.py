"""Typed configuration: presets, overrides, and errors that name the key path."""

import pytest

from mvlm.config import (
    ConfigError,
    EvaluateConfig,
    SynthConfig,
    TrainConfig,
    apply_overrides,
    build,
    load_params,
    model_config,
    resolve_switches,
    tracker_config,
)


def test_base_preset_is_the_paper():
    cfg = model_config(preset="base")
    assert cfg.encoder.dims == (128, 256, 512)
    assert cfg.encoder.depths == (3, 3, 24)
    assert cfg.encoder.search_size == 224 and cfg.feat_size == 14
    assert cfg.text.clip_model == "ViT-L-14" and cfg.text.context_length == 77


def test_tiny_preset_overrides_and_user_overrides():
    cfg = model_config({"preset": "tiny", "encoder": {"depths": [1, 1, 2]}})
    assert cfg.preset == "tiny"
    assert cfg.encoder.depths == (1, 1, 2)
    assert cfg.encoder.search_size == 128 and cfg.feat_size == 8


def test_unknown_key_names_the_path():
    with pytest.raises(ConfigError, match=r"model\.encoder\.dpeths"):
        model_config({"preset": "tiny", "encoder": {"dpeths": [1, 1, 2]}})


def test_wrong_type_names_the_path():
    with pytest.raises(ConfigError, match=r"model\.encoder\.depths\[1\]: expected int"):
        model_config({"encoder": {"depths": [1, "two", 2]}})
    with pytest.raises(ConfigError, match=r"tracker\.tau: expected float"):
        tracker_config({"tau": "high"})
    with pytest.raises(ConfigError, match=r"tracker\.compat: expected one of"):
        tracker_config({"compat": "fixed"})


def test_tracker_presets_digest_values():
    tf = tracker_config(preset="tf")
    assert (tf.alpha, tf.tau, tf.omega, tf.lam, tf.psi_out) == (1.0, 0.1, 0.4, 0.4, 0.0)
    tnl = tracker_config(preset="tf_tnl2k")
    assert (tnl.alpha, tnl.tau, tnl.omega, tnl.lam, tnl.psi_out) == (0.7, 0.0, 0.6, 0.7, 0.1)
    bb = tracker_config(preset="bbox")
    assert (bb.alpha, bb.tau, bb.omega, bb.lam, bb.psi_out) == (0.5, 0.2, 0.9, 0.9, 0.3)
    assert not bb.template_free


def test_corrected_fixes_resolve_individually():
    ref = tracker_config({"compat": "reference"})
    assert resolve_switches(ref) == {
        "exact_pooling": False, "aligned_memory": False, "letterbox_global": False, "global_window": True,
        "exact_mapping": False, "hysteresis": 1,
    }
    cor = tracker_config({"compat": "corrected", "aligned_memory": False})
    fixes = resolve_switches(cor)
    assert fixes["exact_pooling"] and fixes["letterbox_global"] and not fixes["global_window"]
    assert fixes["aligned_memory"] is False


def test_overrides_parse_yaml_values():
    out = apply_overrides({"tracker": {"tau": 0.1}}, ["tracker.tau=0.25", "tracker.memory=false", "a.b=x"])
    assert out == {"tracker": {"tau": 0.25, "memory": False}, "a": {"b": "x"}}
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["tracker.tau"])


def test_unknown_preset_is_clear():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        model_config(preset="huge")


def test_repo_params_file_is_valid(tmp_path):
    from pathlib import Path

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    build(SynthConfig, params["synth"], "synth")
    build(EvaluateConfig, params["evaluate"], "evaluate")
    for name in ("train_tf", "train_bbox"):
        cfg = build(TrainConfig, params[name], name)
        model_config(preset=cfg.preset)


def test_missing_params_file_is_clear(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
