"""MVLMNet: released key layout, parameter counts, forward/backward on tiny and reduced base."""

from __future__ import annotations

import json

import pytest
import torch

from mvlm.config import model_config
from mvlm.model import MVLMNet, all_boxes, cal_bbox, count_parameters, parameter_counts

# the CLIP ViT-L/14 tower adds ~123 M params and ~10 s of init: key checks use a stand-in tower
# of the same width (768), which only changes text_encoder.clip.* (never in saved state dicts)
BASE_NO_TOWER = {"text": {"tower": False, "width": 768}}


@pytest.fixture(scope="module")
def base_model():
    # meta tensors: real shapes and counts without ~90 M random draws
    with torch.device("meta"):
        return MVLMNet(model_config(BASE_NO_TOWER, preset="base"))


def test_base_keys_shapes_order_equal_released(base_model, parity_dir):
    ref = json.loads((parity_dir / "base_state_dict_keys.json").read_text())
    expected = ref["configs"]["mvlm_TF"]["keys"]
    state = base_model.state_dict()
    assert len(state) == 658
    assert [k for k, *_ in expected] == list(state)
    for key, shape, dtype, _ in expected:
        assert list(state[key].shape) == shape, key
        assert str(state[key].dtype).replace("torch.", "") == dtype, key


def test_base_parameter_counts(base_model):
    counts = parameter_counts(base_model)
    assert counts["encoder"] == 84_343_936  # 84.34 M
    assert counts["head"] == 4_704_645  # 4.70 M
    assert counts["text_proj"] == 393_728  # 0.39 M
    assert counts["trainable"] == 89_442_309  # the released file's parameter elements
    assert count_parameters(base_model.encoder.body.patch_embed) == 128 * 6 * 16 + 128


def test_bbox_mode_has_the_same_keys(base_model):
    with torch.device("meta"):
        bbox = MVLMNet(model_config({**BASE_NO_TOWER, "template_free": False}, preset="base"))
    assert {k: v.shape for k, v in bbox.state_dict().items()} == {
        k: v.shape for k, v in base_model.state_dict().items()}


def test_drop_path_rises_linearly_over_conv_and_main_blocks(base_model):
    body = base_model.encoder.body
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in body.blocks if hasattr(b, "drop_path")]
    assert len(rates) == 30
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.1)
    assert rates == pytest.approx([0.1 * i / 29 for i in range(30)])


def _train_step(model: MVLMNet, templates: bool, text: list[str] | None = None):
    cfg = model.cfg
    torch.manual_seed(1)
    b, s, t = 2, cfg.encoder.search_size, cfg.encoder.template_size
    search = torch.randn(b, 6, s, s)
    temps = [torch.randn(b, 6, t, t), torch.randn(b, 6, t, t)] if templates else None
    if text is None:
        text_emb = torch.randn(b, 7, model.text_encoder.width)
        out = model(search, temps, text_emb=model.text_encoder.project(text_emb))
    else:
        out = model(search, temps, text=text)
    loss = sum(v.float().square().mean() for k, v in out.items())
    loss.backward()
    return out


def _assert_all_grads(model: MVLMNet):
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing[:5]
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, bad[:5]


@pytest.mark.parametrize("template_free", [True, False])
def test_tiny_forward_backward(template_free):
    torch.manual_seed(0)
    model = MVLMNet(model_config({"template_free": template_free}, preset="tiny")).train()
    out = _train_step(model, templates=not template_free, text=["a red circle", "the small blue square"])
    f, d, ctx = 8, 128, 16
    n_templates = 0 if template_free else 2 * 16
    assert out["feat_x"].shape == (2, f * f, d)
    assert out["score_map"].shape == (2, 1, f, f)
    assert out["size_map"].shape == (2, 2, f, f)
    assert out["offset_map"].shape == (2, 2, f, f)
    assert out["pred_boxes"].shape == (2, 1, 4)
    assert out["text_emb"].shape == (2, ctx, d)
    assert out["tae"].shape == out["tbe"].shape == (2, f * f + n_templates + ctx, d)
    assert ("feat_z" in out) == (not template_free)
    for key, value in out.items():
        assert torch.isfinite(value).all(), key
    assert ((out["score_map"] >= 1e-4) & (out["score_map"] <= 1 - 1e-4)).all()
    _assert_all_grads(model)  # the tiny text tower is trainable: it gets gradients too
    assert model.text_encoder.clip.transformer.resblocks[0].attn.in_proj_weight.grad is not None
    # ... except its token table, kept fixed in the tiny preset (and still saved with the weights)
    table = model.text_encoder.clip.token_embedding.weight
    assert not table.requires_grad and table.grad is None
    assert "text_encoder.clip.token_embedding.weight" in model.state_dict()


def test_token_table_trains_when_asked():
    cfg = model_config({"text": {"train_token_embedding": True}}, preset="tiny")
    model = MVLMNet(cfg).train()
    _train_step(model, templates=False, text=["a red circle", "the small blue square"])
    grad = model.text_encoder.clip.token_embedding.weight.grad
    assert grad is not None and grad.abs().sum() > 0


@pytest.mark.slow
def test_reduced_base_forward_backward():
    cfg = model_config({**BASE_NO_TOWER, "template_free": False, "encoder": {"depths": [1, 1, 2]}}, preset="base")
    model = MVLMNet(cfg).train()
    out = _train_step(model, templates=True)
    assert out["feat_x"].shape == (2, 196, 512)
    assert out["feat_z"].shape == (2, 98, 512)
    assert out["tae"].shape == (2, 196 + 98 + 7, 512)
    assert out["score_map"].shape == (2, 1, 14, 14)
    _assert_all_grads(model)


def test_token_layout_and_position_embedding():
    torch.manual_seed(0)
    model = MVLMNet(model_config({"template_free": False}, preset="tiny")).eval()
    body = model.encoder.body
    search, temp = torch.randn(1, 6, 128, 128), torch.randn(1, 6, 64, 64)
    text_emb = torch.randn(1, 5, 128)
    with torch.no_grad():
        tokens, nz = body.assemble_tokens(search, [temp, temp], text_emb)
        assert nz == 32 and tokens.shape == (1, 1 + 64 + 32 + 5, 128)
        assert torch.equal(tokens[:, 0], body.cls_token[:, 0])
        # both templates get the same (template) rows of pos_embed; text gets none
        assert torch.equal(tokens[:, 65:81], tokens[:, 81:97])
        expected_z = body.embed_image(temp) + body.pos_embed[:, 64:]
        assert torch.allclose(tokens[:, 65:81], expected_z, atol=1e-6)
        assert torch.equal(tokens[:, -5:], text_emb)


def test_template_free_ignores_templates():
    torch.manual_seed(0)
    model = MVLMNet(model_config({}, preset="tiny")).eval()
    search, emb = torch.randn(1, 6, 128, 128), torch.randn(1, 16, 128)
    with torch.no_grad():
        a = model(search, None, text_emb=emb)
        b = model(search, [torch.randn(1, 6, 64, 64)], text_emb=emb)
    assert torch.equal(a["score_map"], b["score_map"]) and "feat_z" not in a


def test_bad_inputs_give_clear_errors():
    model = MVLMNet(model_config({"template_free": False}, preset="tiny")).eval()
    emb = torch.randn(1, 16, 128)
    with pytest.raises(ValueError, match="6, S, S"):
        model(torch.randn(1, 3, 128, 128), [torch.randn(1, 6, 64, 64)], text_emb=emb)
    with pytest.raises(ValueError, match="search_size"):
        model(torch.randn(1, 6, 224, 224), [torch.randn(1, 6, 64, 64)], text_emb=emb)
    with pytest.raises(ValueError, match="none were given"):
        model(torch.randn(1, 6, 128, 128), None, text_emb=emb)
    with pytest.raises(ValueError, match="text_emb or text"):
        model(torch.randn(1, 6, 128, 128), [torch.randn(1, 6, 64, 64)])
    with pytest.raises(ValueError, match=r"\(B, L, 128\)"):
        model(torch.randn(1, 6, 128, 128), [torch.randn(1, 6, 64, 64)], text_emb=torch.randn(1, 4, 64))


def test_cal_bbox_and_all_boxes_exact():
    score = torch.full((1, 1, 4, 4), 0.1)
    score[0, 0, 2, 1] = 0.9  # gy=2, gx=1 -> index 9
    size = torch.zeros(1, 2, 4, 4)
    size[0, 0, 2, 1], size[0, 1, 2, 1] = 0.25, 0.5
    offset = torch.zeros(1, 2, 4, 4)
    offset[0, 0, 2, 1], offset[0, 1, 2, 1] = 0.5, -0.25
    box = cal_bbox(score, size, offset)
    assert box.tolist() == [[(1 + 0.5) / 4, (2 - 0.25) / 4, 0.25, 0.5]]
    boxes = all_boxes(size, offset)
    assert boxes.shape == (1, 16, 4)
    assert boxes[0, 9].tolist() == box[0].tolist()
    assert boxes[0, 0].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert boxes[0, 7].tolist() == [3 / 4, 1 / 4, 0.0, 0.0]  # index 7 = gy 1, gx 3


def test_head_init_is_xavier_and_conv_type_small():
    from mvlm.config import HeadConfig
    from mvlm.model.head import CenterHead

    head = CenterHead(64, HeadConfig(channels=32, conv_type="small"))
    assert head.conv1_ctr[0].weight.shape == (32, 64, 1, 1)
    assert head.conv4_size[0].weight.shape == (4, 8, 1, 1)
    assert head.conv5_offset.weight.shape == (2, 4, 1, 1)
    bound = (6 / (64 + 32)) ** 0.5  # xavier-uniform bound of conv1 (1x1)
    assert head.conv1_ctr[0].weight.abs().max() <= bound
