"""The small bidirectional Transformer denoiser shared by the three toy variants, and the autoregressive twin.

Input: a noisy sequence z_t (ids for masked/uniform, vectors for Gaussian) and, for
variants that need it, the time t. Output: logits over the V = 13 units per position.
Pre-norm encoder blocks, learned positions for the 6 slots, no causal mask. With `causal`
(the autoregressive twin, variants/autoregressive.py) the same network gets a causal mask:
position i attends to positions <= i only; nothing else changes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn


@dataclass
class DenoiserConfig:
    n_in: int = 14  # input ids (13 units + [MASK] for masked, 13 for uniform)
    n_out: int = 13  # output units (never [MASK]: SUBS)
    seq_len: int = 6
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    time_input: bool = False  # masked diffusion needs no t (RADD)
    input_dim: int = 0  # > 0: continuous inputs of this size (Gaussian variant)
    dropout: float = 0.0
    causal: bool = False  # True: position i sees only positions <= i (the autoregressive twin)

    def to_dict(self) -> dict:
        return asdict(self)


def time_features(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features of t in [0, 1] (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=t.device) / half)
    ang = 1000.0 * t[:, None].float() * freqs[None, :]
    return torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)


class Denoiser(nn.Module):
    def __init__(self, cfg: DenoiserConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.input_dim > 0:
            self.embed = nn.Linear(cfg.input_dim, cfg.d_model)
        else:
            self.embed = nn.Embedding(cfg.n_in, cfg.d_model)
        self.pos = nn.Parameter(torch.randn(cfg.seq_len, cfg.d_model) * 0.02)
        if cfg.time_input:
            self.time_mlp = nn.Sequential(
                nn.Linear(cfg.d_model, cfg.d_model), nn.SiLU(), nn.Linear(cfg.d_model, cfg.d_model)
            )
        layer = nn.TransformerEncoderLayer(
            cfg.d_model,
            cfg.n_heads,
            cfg.d_ff,
            dropout=cfg.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.blocks = nn.TransformerEncoder(layer, cfg.n_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, cfg.n_out)

    def forward(self, z: torch.Tensor, t: torch.Tensor | None = None) -> torch.Tensor:
        h = self.embed(z) + self.pos[None, : z.shape[1]]
        if self.cfg.time_input:
            if t is None:
                raise ValueError("this denoiser needs the time t")
            t = t.expand(z.shape[0]) if t.dim() == 0 else t
            h = h + self.time_mlp(time_features(t, self.cfg.d_model))[:, None, :]
        if self.cfg.causal:  # -inf above the diagonal: position i attends to positions <= i
            mask = torch.nn.Transformer.generate_square_subsequent_mask(z.shape[1], dtype=h.dtype)
            return self.head(self.norm(self.blocks(h, mask=mask, is_causal=True)))
        return self.head(self.norm(self.blocks(h)))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
