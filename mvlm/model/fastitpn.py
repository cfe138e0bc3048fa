"""Fast-iTPN encoder with joint vision-language tokens (docs/paper-notes.md §1.2).

Pipeline for one image of side S (patch stride 4·2·2 = 16):

    (B, C_in, S, S)  --patch_embed (conv k4 s4)-->    (B, d1, S/4,  S/4)
                     --stage 1: ConvMlpBlock x n1-->  (B, d1, S/4,  S/4)
                     --ConvPatchMerge (LN, k2 s2)-->  (B, d2, S/8,  S/8)
                     --stage 2: ConvMlpBlock x n2-->  (B, d2, S/8,  S/8)
                     --ConvPatchMerge (LN, k2 s2)-->  (B, d3, S/16, S/16)

The search image and every template go through these stages with the same weights. Then the
joint sequence

    [CLS] [search (S/16)^2] [template_1 (T/16)^2] ... [template_n] [text L]

runs through n3 transformer blocks with full bidirectional attention. Position embeddings are
absolute: `pos_embed` rows 0..Ns-1 are added to the search tokens, rows Ns..Ns+Nt-1 to *every*
template; CLS and text tokens get none, and there is no token-type embedding.

All the stage blocks, both merges and the main blocks live in one list `blocks` so the
state-dict keys follow the released layout by index (`blocks.{0..n1-1}` stage 1, `blocks.n1`
merge, ..., the last n3 entries are the main blocks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import DropPath, trunc_normal_
from torch import nn

from mvlm.config import EncoderConfig

PATCH_STRIDE = 16


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channel axis of an NCHW map (same parameters as nn.LayerNorm(C))."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward_nhwc(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        return super().forward(x)


def _nchw(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run a channels-last `forward_nhwc` on an NCHW map (the keys' native layout)."""
    return module.forward_nhwc(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ConvMlp(nn.Module):
    """1x1-conv MLP with a sub-LayerNorm on the hidden channels: fc2(LN(GELU(fc1 x)))."""

    def __init__(self, dim: int, hidden: int, eps: float):
        super().__init__()
        self.fc1 = nn.Conv2d(dim, hidden, kernel_size=1)
        self.act = nn.GELU()
        self.ffn_ln = ChannelLayerNorm(hidden, eps=eps)
        self.fc2 = nn.Conv2d(hidden, dim, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        return _nchw(self, x)

    def forward_nhwc(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        # a 1x1 conv is a Linear over channels; channels-last avoids the slow conv backward on CPU
        h = F.linear(x, self.fc1.weight.flatten(1), self.fc1.bias)
        h = self.ffn_ln.forward_nhwc(self.act(h))
        return F.linear(h, self.fc2.weight.flatten(1), self.fc2.bias)


class ConvMlpBlock(nn.Module):
    """Stage-1/2 block: x + DropPath(ConvMlp(LN(x))). No attention and no layer scale."""

    def __init__(self, dim: int, mlp_ratio: float, drop_path: float, eps: float):
        super().__init__()
        self.norm2 = ChannelLayerNorm(dim, eps=eps)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), eps)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W)
        return _nchw(self, x)

    def forward_nhwc(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, C)
        return x + self.drop_path(self.mlp.forward_nhwc(self.norm2.forward_nhwc(x)))


class ConvPatchMerge(nn.Module):
    """Halves the resolution: LN over channels, then a 2x2 stride-2 conv dim_in -> dim_out."""

    def __init__(self, dim_in: int, dim_out: int, eps: float):
        super().__init__()
        self.norm = ChannelLayerNorm(dim_in, eps=eps)
        self.reduction = nn.Conv2d(dim_in, dim_out, kernel_size=2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, Cin, H, W) -> (B, Cout, H/2, W/2)
        return _nchw(self, x)

    def forward_nhwc(self, x: torch.Tensor) -> torch.Tensor:  # (B, H, W, Cin) -> (B, H/2, W/2, Cout)
        b, h, w, c = x.shape
        x = self.norm.forward_nhwc(x)
        # non-overlapping 2x2 windows as rows of (kh, kw, C), matched by the conv kernel reordered
        x = x.reshape(b, h // 2, 2, w // 2, 2, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h // 2, w // 2, 4 * c)
        weight = self.reduction.weight.permute(0, 2, 3, 1).reshape(self.reduction.out_channels, 4 * c)
        return F.linear(x, weight, self.reduction.bias)


class Attention(nn.Module):
    """Multi-head self-attention with separate q/k/v projections.

    q and v have a learned bias, k has none (a bias on k only shifts every logit of a query by
    the same amount, so it would be redundant). Logits softmax(q·kᵀ/√d) are computed in fp32
    even under autocast, as in the reference.
    """

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"encoder width {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.scale = (dim // num_heads) ** -0.5
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.proj = nn.Linear(dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D) -> (B, h, N, D/h)
        b, n, _ = x.shape
        return x.reshape(b, n, self.num_heads, -1).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D)
        q = self._heads(F.linear(x, self.q_proj.weight, self.q_bias))
        k = self._heads(self.k_proj(x))
        v = self._heads(F.linear(x, self.v_proj.weight, self.v_bias))
        with torch.autocast(device_type=x.device.type, enabled=False):
            logits = (q.float() * self.scale) @ k.float().transpose(-2, -1)  # (B, h, N, N)
            attn = logits.softmax(dim=-1)
        out = attn.to(v.dtype) @ v  # (B, h, N, D/h)
        out = out.transpose(1, 2).reshape(x.shape[0], x.shape[1], -1)
        return self.proj(out)


class SwiGLU(nn.Module):
    """FFN: w3(LN(SiLU(w1 x) ⊙ w2 x)) with a sub-LayerNorm on the hidden width."""

    def __init__(self, dim: int, hidden: int, eps: float):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden)
        self.w2 = nn.Linear(dim, hidden)
        self.ffn_ln = nn.LayerNorm(hidden, eps=eps)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D)
        return self.w3(self.ffn_ln(F.silu(self.w1(x)) * self.w2(x)))


class Block(nn.Module):
    """Pre-norm transformer block with layer scale:
    x ← x + DropPath(γ₁ ⊙ Attn(LN(x)));  x ← x + DropPath(γ₂ ⊙ SwiGLU(LN(x)))."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, drop_path: float,
                 layer_scale_init: float, eps: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = SwiGLU(dim, int(dim * mlp_ratio), eps)
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()
        self.gamma_1 = nn.Parameter(torch.full((dim,), float(layer_scale_init)))
        self.gamma_2 = nn.Parameter(torch.full((dim,), float(layer_scale_init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, N, D)
        x = x + self.drop_path(self.gamma_1 * self.attn(self.norm1(x)))
        return x + self.drop_path(self.gamma_2 * self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """Stride-4 patch embedding: one 4x4 conv, no norm."""

    def __init__(self, in_chans: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=4, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, S, S) -> (B, d1, S/4, S/4)
        return self.proj(x)

    def forward_nhwc(self, x: torch.Tensor) -> torch.Tensor:  # (B, C_in, S, S) -> (B, S/4, S/4, d1)
        b, c, h, w = x.shape
        # non-overlapping 4x4 patches as rows of (C, kh, kw), the conv kernel's own order
        x = x.reshape(b, c, h // 4, 4, w // 4, 4).permute(0, 2, 4, 1, 3, 5).reshape(b, h // 4, w // 4, c * 16)
        return F.linear(x, self.proj.weight.flatten(1), self.proj.bias)


class FastITPN(nn.Module):
    """Fast-iTPN body. Submodule/parameter names match the released `encoder.body.*` keys."""

    def __init__(self, cfg: EncoderConfig, template_free: bool = True):
        super().__init__()
        d1, d2, d3 = cfg.dims
        n1, n2, n3 = cfg.depths
        for side, what in ((cfg.search_size, "search_size"), (cfg.template_size, "template_size")):
            if side % PATCH_STRIDE:
                raise ValueError(f"encoder.{what}={side} must be a multiple of {PATCH_STRIDE}")
        self.cfg = cfg
        self.template_free = template_free
        self.embed_dim = d3
        self.num_search_tokens = (cfg.search_size // PATCH_STRIDE) ** 2
        self.num_template_tokens = (cfg.template_size // PATCH_STRIDE) ** 2
        self.num_main_blocks = n3
        eps = cfg.norm_eps
        # stochastic depth rises linearly over every ConvMlp and transformer block (merges excluded)
        total = n1 + n2 + n3
        rates = [cfg.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        stage1, stage2, main = rates[:n1], rates[n1:n1 + n2], rates[n1 + n2:]

        self.cls_token = nn.Parameter(torch.zeros(1, 1, d3))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_search_tokens + self.num_template_tokens, d3))
        self.patch_embed = PatchEmbed(cfg.in_chans, d1)
        blocks: list[nn.Module] = [ConvMlpBlock(d1, cfg.bridge_mlp_ratio, r, eps) for r in stage1]
        blocks.append(ConvPatchMerge(d1, d2, eps))
        blocks += [ConvMlpBlock(d2, cfg.bridge_mlp_ratio, r, eps) for r in stage2]
        blocks.append(ConvPatchMerge(d2, d3, eps))
        blocks += [Block(d3, cfg.num_heads, cfg.mlp_ratio, r, cfg.layer_scale_init, eps) for r in main]
        self.blocks = nn.ModuleList(blocks)
        self.fc_norm = nn.LayerNorm(d3, eps=eps)
        self._init_weights()

    def _init_weights(self) -> None:
        trunc_normal_(self.pos_embed, std=0.02)
        trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def conv_blocks(self) -> nn.ModuleList:
        return self.blocks[: len(self.blocks) - self.num_main_blocks]

    @property
    def main_blocks(self) -> nn.ModuleList:
        return self.blocks[len(self.blocks) - self.num_main_blocks:]

    def embed_image(self, x: torch.Tensor) -> torch.Tensor:
        """Patch embed + stages 1-2 + merges: (B, C_in, S, S) -> tokens (B, (S/16)^2, d3)."""
        if x.dim() != 4 or x.shape[1] != self.cfg.in_chans:
            raise ValueError(f"expected an image batch (B, {self.cfg.in_chans}, S, S), got {tuple(x.shape)}")
        if x.shape[-1] % PATCH_STRIDE or x.shape[-2] % PATCH_STRIDE:
            raise ValueError(f"image side {tuple(x.shape[-2:])} is not a multiple of {PATCH_STRIDE}")
        x = self.patch_embed.forward_nhwc(x)  # (B, S/4, S/4, d1), channels-last through the stages
        for block in self.conv_blocks:
            x = block.forward_nhwc(x)
        return x.flatten(1, 2)  # (B, h, w, C) -> (B, h*w, C), row-major like the reference

    def _check_tokens(self, n: int, expected: int, what: str) -> None:
        if n != expected:
            raise ValueError(
                f"{what} gives {n} tokens but pos_embed has {expected} rows for it "
                f"(encoder.{'search' if what == 'search' else 'template'}_size mismatch)"
            )

    def assemble_tokens(self, search: torch.Tensor, templates: list[torch.Tensor] | None,
                        text_emb: torch.Tensor) -> tuple[torch.Tensor, int]:
        """Joint sequence [CLS][search][templates...][text] before the main blocks.

        Returns (tokens (B, 1+Ns+n·Nt+L, D), number of template tokens n·Nt).
        """
        ns = self.num_search_tokens
        x = self.embed_image(search)  # (B, Ns, D)
        self._check_tokens(x.shape[1], ns, "search")
        parts = [self.cls_token.expand(x.shape[0], -1, -1), x + self.pos_embed[:, :ns]]
        num_template_tokens = 0
        if not self.template_free:
            if not templates:
                raise ValueError("this encoder uses templates (template_free=False) but none were given")
            # one pass for all templates: the stages act per sample, so batching them is exact
            z = self.embed_image(torch.cat(list(templates), dim=0))  # (n·B, Nt, D)
            self._check_tokens(z.shape[1], self.num_template_tokens, "template")
            z = z + self.pos_embed[:, ns:]
            parts += list(z.split(x.shape[0], dim=0))
            num_template_tokens = z.shape[0] // x.shape[0] * z.shape[1]
        parts.append(text_emb.to(x.dtype))
        return torch.cat(parts, dim=1), num_template_tokens

    def forward(self, search: torch.Tensor, templates: list[torch.Tensor] | None,
                text_emb: torch.Tensor) -> dict[str, torch.Tensor]:
        """search (B,C,S,S), templates list of (B,C,T,T) (ignored when template-free),
        text_emb (B,L,D) -> dict of feat_x (B,Ns,D), tbe/tae (B,N-1,D), feat_z (B,n·Nt,D)."""
        if text_emb.dim() != 3 or text_emb.shape[-1] != self.embed_dim:
            raise ValueError(f"text_emb must be (B, L, {self.embed_dim}), got {tuple(text_emb.shape)}")
        x, nz = self.assemble_tokens(search, templates, text_emb)
        tbe = x[:, 1:]
        for block in self.main_blocks:
            x = block(x)
        tae = x[:, 1:]
        ns = self.num_search_tokens
        out = {"feat_x": self.fc_norm(tae[:, :ns]), "tae": tae, "tbe": tbe}
        if nz:
            out["feat_z"] = self.fc_norm(tae[:, ns:ns + nz])
        return out


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (optionally only those with requires_grad)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
