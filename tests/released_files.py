"""Files in the layouts researchers bring, with random weights: released MVLM checkpoints
(`MVLM_TF.pth.tar` / `MVLM_BBOX.pth.tar`: the reference's key names and dict layout, foreign pickled
classes) and a CLIP ViT-L/14 text tower. Shared by the checkpoint and paper-pipeline tests."""

from __future__ import annotations

import sys
import types

import torch

FOREIGN = ("lib", "lib.train", "lib.train.admin", "lib.train.admin.stats", "lib.train.admin.settings",
           "lib.local_config")


def released_shapes() -> dict[str, tuple]:
    """The reference's `net` keys and shapes, written from its key table (658 entries)."""
    e, s = "encoder.body.", {}
    s[e + "cls_token"], s[e + "pos_embed"] = (1, 1, 512), (1, 245, 512)
    s[e + "patch_embed.proj.weight"], s[e + "patch_embed.proj.bias"] = (128, 6, 4, 4), (128,)
    for blocks, d, h, red in (((0, 1, 2), 128, 384, 3), ((4, 5, 6), 256, 768, 7)):
        for b in blocks:
            p = f"{e}blocks.{b}."
            s[p + "norm2.weight"] = s[p + "norm2.bias"] = (d,)
            s[p + "mlp.fc1.weight"], s[p + "mlp.fc1.bias"] = (h, d, 1, 1), (h,)
            s[p + "mlp.ffn_ln.weight"] = s[p + "mlp.ffn_ln.bias"] = (h,)
            s[p + "mlp.fc2.weight"], s[p + "mlp.fc2.bias"] = (d, h, 1, 1), (d,)
        p = f"{e}blocks.{red}."
        s[p + "norm.weight"] = s[p + "norm.bias"] = (d,)
        s[p + "reduction.weight"], s[p + "reduction.bias"] = (2 * d, d, 2, 2), (2 * d,)
    for b in range(8, 32):
        p = f"{e}blocks.{b}."
        for name in ("gamma_1", "gamma_2", "norm1.weight", "norm1.bias", "attn.q_bias", "attn.v_bias",
                     "attn.proj.bias", "norm2.weight", "norm2.bias", "mlp.w3.bias"):
            s[p + name] = (512,)
        for name in ("q_proj", "k_proj", "v_proj", "proj"):
            s[f"{p}attn.{name}.weight"] = (512, 512)
        for name in ("w1", "w2"):
            s[f"{p}mlp.{name}.weight"], s[f"{p}mlp.{name}.bias"] = (1536, 512), (1536,)
        s[p + "mlp.ffn_ln.weight"] = s[p + "mlp.ffn_ln.bias"] = (1536,)
        s[p + "mlp.w3.weight"] = (512, 1536)
    s[e + "fc_norm.weight"] = s[e + "fc_norm.bias"] = (512,)
    s["text_encoder.text_proj.weight"], s["text_encoder.text_proj.bias"] = (512, 768), (512,)
    for branch in ("ctr", "offset", "size"):
        for i, (cin, cout) in enumerate(((512, 256), (256, 128), (128, 64), (64, 32)), start=1):
            p = f"head.conv{i}_{branch}."
            s[p + "0.weight"], s[p + "0.bias"] = (cout, cin, 3, 3), (cout,)
            for name in ("weight", "bias", "running_mean", "running_var"):
                s[f"{p}1.{name}"] = (cout,)
            s[p + "1.num_batches_tracked"] = ()
        s[f"head.conv5_{branch}.weight"] = (1 if branch == "ctr" else 2, 32, 1, 1)
        s[f"head.conv5_{branch}.bias"] = (1 if branch == "ctr" else 2,)
    return s


def _foreign_classes():
    """Throwaway modules named like the authors' code, so pickling records those paths."""
    mods = {name: types.ModuleType(name) for name in FOREIGN}

    def make(module, name, init):
        cls = type(name, (), {"__init__": init, "__module__": module})
        setattr(mods[module], name, cls)
        return cls

    meter = make("lib.train.admin.stats", "AverageMeter", lambda self: self.__dict__.update(avg=0.3, count=7))
    env = make("lib.local_config", "EnvSettings", lambda self: self.__dict__.update(workspace_dir="/authors/ws"))
    settings = make("lib.train.admin.settings", "Settings", lambda self: self.__dict__.update(env=env()))
    return mods, meter, settings


def write_released(path, state: dict, epoch: int) -> None:
    mods, meter, settings = _foreign_classes()
    sys.modules.update(mods)
    try:
        torch.save({"epoch": epoch, "actor_type": "MVLM_Actor", "net_type": "MVLM", "net": state,
                    "net_info": None, "constructor": None,
                    "optimizer": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(4)}},
                                  "param_groups": [{"lr": 5e-4, "betas": (0.9, 0.999), "params": [0]}]},
                    "stats": {"train": {"Loss/total": meter()}}, "settings": settings()}, path)
    finally:
        for name in FOREIGN:
            sys.modules.pop(name, None)


def random_released_state(seed: int, epoch: int) -> dict[str, torch.Tensor]:
    """Random base-size weights under the reference's `net` keys."""
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in released_shapes().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(epoch)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            state[key] = torch.randn(shape, generator=gen) * 0.02
    return state


def write_clip_l14_text(path, seed: int = 0) -> None:
    """A random CLIP ViT-L/14 text tower (width 768, 12 layers, 77 positions, vocabulary 49408) in
    open_clip names, fp16 safetensors (~250 MB): what `paper.text_weights` / --text-weights read."""
    from safetensors.torch import save_file

    from mvlm.config import TextConfig
    from mvlm.model.text import TextEncoder

    with torch.device("meta"):
        shapes = {k: tuple(v.shape) for k, v in TextEncoder(TextConfig(), out_dim=8).clip.state_dict().items()
                  if not k.endswith("attn_mask")}
    gen = torch.Generator().manual_seed(seed)
    state = {k: (torch.randn(s, generator=gen) * 0.02).half() for k, s in shapes.items()}
    for k in [k for k in state if "ln_" in k and k.endswith(".weight")]:
        state[k] = torch.ones_like(state[k])
    save_file(state, str(path))
