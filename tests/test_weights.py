"""CLIP text weights in the three layouts (OpenAI TorchScript archive, open_clip state dict, Hugging
Face) load to the same tower; `mvlm weights check/convert`; the fp16 text switch."""

from __future__ import annotations

import collections
import zipfile

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from mvlm.config import TextConfig, model_config
from mvlm.model import MVLMNet, load_model, save_checkpoint
from mvlm.model.text import TextEncoder, TextError, read_clip_text_state, tokenize

# a CLIP ViT-L/14-style text tower at a small width (CLIP's vocabulary and 77 positions)
SMALL = dict(clip_model="ViT-L-14", context_length=77, width=64, layers=2, heads=4)
SENTENCES = ["a red car on the left", "the person in a blue shirt"]


def _tower_state(seed: int = 0, **cfg) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    enc = TextEncoder(TextConfig(**{**SMALL, **cfg}), out_dim=8)
    state = {k: v.clone() for k, v in enc.clip.state_dict().items()}
    width = state["token_embedding.weight"].shape[1]
    state["ln_final.weight"], state["ln_final.bias"] = torch.rand(width), torch.rand(width)
    state["text_projection"] = torch.randn(width, 32)
    return state


def _to_hf(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """open_clip names -> transformers' CLIPModel names (q/k/v split), written independently of
    the loader's mapping."""
    out = {"text_model.embeddings.token_embedding.weight": state["token_embedding.weight"],
           "text_model.embeddings.position_embedding.weight": state["positional_embedding"],
           "text_model.embeddings.position_ids": torch.arange(77)[None],
           "text_model.final_layer_norm.weight": state["ln_final.weight"],
           "text_model.final_layer_norm.bias": state["ln_final.bias"],
           "text_projection.weight": state["text_projection"].t().contiguous(),
           "vision_model.embeddings.class_embedding": torch.zeros(8), "logit_scale": torch.tensor(4.6)}
    names = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
             "attn.out_proj": "self_attn.out_proj"}
    layers = {k.split(".")[2] for k in state if k.startswith("transformer.resblocks.")}
    for i in layers:
        src, dst = f"transformer.resblocks.{i}.", f"text_model.encoder.layers.{i}."
        for ours, theirs in names.items():
            for p in ("weight", "bias"):
                out[f"{dst}{theirs}.{p}"] = state[f"{src}{ours}.{p}"]
        for p in ("weight", "bias"):
            q, k, v = state[f"{src}attn.in_proj_{p}"].chunk(3)
            for name, t in zip("qkv", (q, k, v)):
                out[f"{dst}self_attn.{name}_proj.{p}"] = t.contiguous()
    return out


class _Block(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(collections.OrderedDict(
            c_fc=nn.Linear(width, 4 * width), gelu=nn.GELU(), c_proj=nn.Linear(4 * width, width)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.resblocks = nn.Sequential(*[_Block(width, heads) for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(x)


class _Visual(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Parameter(torch.randn(16, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.proj


class _OpenAICLIP(nn.Module):
    """The attribute tree of OpenAI's CLIP model (what ViT-L-14.pt holds), text side plus a stub
    vision tower."""

    def __init__(self, width: int, layers: int, heads: int):
        super().__init__()
        self.visual = _Visual()
        self.transformer = _Transformer(width, layers, heads)
        self.token_embedding = nn.Embedding(49408, width)
        self.positional_embedding = nn.Parameter(torch.empty(77, width))
        self.ln_final = nn.LayerNorm(width)
        self.text_projection = nn.Parameter(torch.empty(width, 32))
        self.logit_scale = nn.Parameter(torch.ones([]))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.token_embedding(ids) + self.positional_embedding
        return self.ln_final(self.transformer(x)) @ self.text_projection


def _torchscript_archive(state: dict[str, torch.Tensor], path, dtype=torch.float32):
    width = state["token_embedding.weight"].shape[1]
    layers = len({k.split(".")[2] for k in state if k.startswith("transformer.resblocks.")})
    module = _OpenAICLIP(width, layers, 4)
    missing, unexpected = module.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) == {"visual.proj", "logit_scale"}
    torch.jit.save(torch.jit.script(module.to(dtype).eval()), str(path))
    return path


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    """The same random tower in every accepted layout."""
    d = tmp_path_factory.mktemp("clip")
    state = _tower_state()
    with_vision = {**state, "visual.proj": torch.randn(16, 8), "logit_scale": torch.tensor(4.6)}
    files = {"torchscript": _torchscript_archive(state, d / "ViT-L-14.pt")}
    torch.save(with_vision, d / "open_clip_model.pt")
    files["open_clip .pt"] = d / "open_clip_model.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in with_vision.items()}}, d / "pytorch_model.bin")
    files["open_clip .bin"] = d / "pytorch_model.bin"
    save_file({k: v.contiguous() for k, v in with_vision.items()}, str(d / "open_clip_model.safetensors"))
    files["open_clip .safetensors"] = d / "open_clip_model.safetensors"
    save_file(_to_hf(state), str(d / "model.safetensors"))
    files["hf"] = d / "model.safetensors"
    return state, files


def test_torchscript_archive_is_a_real_one(layouts):
    _, files = layouts
    names = zipfile.ZipFile(files["torchscript"]).namelist()
    assert any(n.endswith("/constants.pkl") for n in names) and any("/code/" in n for n in names)


def test_three_layouts_load_identical_towers_and_embeddings(layouts):
    state, files = layouts
    expected_layout = {"torchscript": "openai-torchscript", "hf": "hf"}
    ids = tokenize(SENTENCES, "ViT-L-14", 77)
    outputs = {}
    for name, path in files.items():
        layout, read = read_clip_text_state(path)
        assert layout == expected_layout.get(name, "open_clip"), name
        for key, value in state.items():
            assert torch.equal(read[key], value), (name, key)
        torch.manual_seed(1)  # same text_proj in every encoder
        enc = TextEncoder(TextConfig(**SMALL, weights=str(path)), out_dim=8).eval()
        for key, value in enc.clip.state_dict().items():
            assert torch.equal(value, state[key]), (name, key)
        with torch.no_grad():
            outputs[name] = (enc.hidden_states(ids), enc(SENTENCES))
    ref_hidden, ref_emb = outputs["open_clip .safetensors"]
    for name, (hidden, emb) in outputs.items():
        assert torch.allclose(hidden, ref_hidden, atol=1e-6, rtol=0), name
        assert torch.allclose(emb, ref_emb, atol=1e-6, rtol=0), name


def test_fp16_openai_archive_loads_as_fp32(tmp_path):
    state = _tower_state()
    path = _torchscript_archive(state, tmp_path / "half.pt", dtype=torch.float16)
    _, read = read_clip_text_state(path)
    assert read["token_embedding.weight"].dtype == torch.float32
    assert torch.equal(read["positional_embedding"], state["positional_embedding"].half().float())


def test_torchscript_code_is_never_run(layouts, monkeypatch):
    _, files = layouts

    def refuse(*args, **kwargs):
        raise AssertionError("torch.jit.load must not be called")

    monkeypatch.setattr(torch.jit, "load", refuse)
    assert read_clip_text_state(files["torchscript"])[0] == "openai-torchscript"


def test_wrong_text_files_name_the_file(tmp_path, layouts):
    state, files = layouts
    with pytest.raises(TextError, match="nope.pt: CLIP text weights file not found"):
        read_clip_text_state(tmp_path / "nope.pt")
    save_file({"foo": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(TextError, match="other.safetensors: no CLIP text tower"):
        read_clip_text_state(tmp_path / "other.safetensors")
    with pytest.raises(TextError, match=r"model.safetensors: CLIP text tower does not fit.*\(49408, 64\)"):
        TextEncoder(TextConfig(**{**SMALL, "width": 128, "weights": str(files["hf"])}), out_dim=8)


def test_weights_check_and_convert_cli(layouts, tmp_path, capsys):
    from mvlm.cli import main

    state, files = layouts
    assert main(["weights", "check", str(files["torchscript"])]) == 0
    out = capsys.readouterr().out
    assert "torchscript, CLIP text in openai-torchscript layout" in out
    assert "CLIP text tower: width 64, 2 layers, context 77, vocabulary 49408" in out
    assert "sha256" in out
    converted = tmp_path / "text.safetensors"
    assert main(["weights", "convert", str(files["hf"]), "--out", str(converted)]) == 0
    layout, read = read_clip_text_state(converted)
    assert layout == "open_clip" and all(torch.equal(read[k], v) for k, v in state.items())
    assert main(["weights", "check", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt" in capsys.readouterr().err
    assert main(["weights", "convert", str(files["hf"]), "--out", str(tmp_path / "x.pt")]) == 2


def test_weights_check_names_suite_checkpoints(tmp_path, capsys):
    from mvlm.cli import main

    torch.manual_seed(0)
    path = save_checkpoint(MVLMNet(model_config(preset="tiny")), tmp_path / "m.safetensors", mode="bbox")
    torch.save({"net": read_tiny(path)}, tmp_path / "MVLM_X.pth.tar")
    assert main(["weights", "check", str(path)]) == 0
    assert "MVLM checkpoint, preset tiny, mode bbox (from its metadata)" in capsys.readouterr().out
    assert main(["weights", "check", str(tmp_path / "MVLM_X.pth.tar")]) == 0
    assert "preset tiny, mode not stated in the file" in capsys.readouterr().out


def read_tiny(path):
    from mvlm.model.checkpoint import read_state_dict

    return read_state_dict(path)


def test_text_half_switch_is_wired(tmp_path, layouts):
    """reference compat on CUDA runs the CLIP tower in fp16 (clip.load); on CPU only the wiring."""
    _, files = layouts
    cfg = model_config({"text": {**SMALL, "frozen": True, "pooling": "full"}}, preset="tiny")
    path = save_checkpoint(MVLMNet(cfg), tmp_path / "frozen.safetensors")
    net, meta = load_model(path, text_weights=str(files["torchscript"]), text_half=True)
    assert net.text_encoder.clip.token_embedding.weight.dtype == torch.float16
    assert net.text_encoder.text_proj.weight.dtype == torch.float32 and meta["text_dtype"] == "float16"
    net, meta = load_model(path, text_weights=str(files["torchscript"]))
    assert net.text_encoder.clip.token_embedding.weight.dtype == torch.float32 and "text_dtype" not in meta


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_text_half_runs_on_cuda(tmp_path, layouts):
    from mvlm.track.tracker import TrackerSpec, build_tracker

    _, files = layouts
    cfg = model_config({"text": {**SMALL, "frozen": True}}, preset="tiny")
    path = save_checkpoint(MVLMNet(cfg), tmp_path / "frozen.safetensors")
    built = build_tracker(TrackerSpec(checkpoint=str(path), compat="reference", device="cuda",
                                      checkpoint_model={"text": {"weights": str(files["hf"])}}))
    enc = built.tracker.net.text_encoder
    assert enc.clip.token_embedding.weight.dtype == torch.float16
    assert enc.encode_cached(SENTENCES).dtype == torch.float32


@pytest.mark.slow  # two ViT-L/14 text towers (123 M parameters each) and a 0.5 GB file
def test_real_vit_l14_text_size_hf_layout(tmp_path):
    torch.manual_seed(0)
    full = TextEncoder(TextConfig(), out_dim=8).eval()  # the paper's tower: width 768, 12 layers
    state = {k: v for k, v in full.clip.state_dict().items()}
    state["ln_final.weight"], state["ln_final.bias"] = torch.ones(768), torch.zeros(768)
    state["text_projection"] = torch.zeros(768, 768)
    save_file(_to_hf(state), str(tmp_path / "model.safetensors"))
    del state
    torch.manual_seed(0)
    loaded = TextEncoder(TextConfig(weights=str(tmp_path / "model.safetensors")), out_dim=8).eval()
    assert loaded.width == 768 and len(loaded.clip.transformer.resblocks) == 12
    with torch.no_grad():
        assert torch.allclose(loaded(SENTENCES[:1]), full(SENTENCES[:1]), atol=1e-6, rtol=0)
