"""Keys and values kept between steps for a BERT-style masked LM: the block cache's model side.

A transformer layer turns each position's hidden state h_i into a query q_i, a key k_i and a
value v_i; position i's output is softmax(q_i K^T / sqrt(d)) V over the keys and values of the
positions it may see. `BertKV.forward(x, lo, hi, store)` runs the encoder for the positions
[lo, hi) only: their queries, keys and values are computed from their tokens, while every other
position's key and value are read from the last `store=True` pass (Fast-dLLM, Wu et al. 2025,
section 3.2; BD3-LM, Arriola et al. 2025, caches finished blocks the same way). The cost of a step
then grows with hi - lo instead of the whole canvas.

This is exact when the cached positions' keys and values would not have changed: in a block-causal
model (position i sees j only if j's block is not after i's, `block_causal`), a finished block never
sees the blocks after it, so its keys and values are final once it is finished. BERT is
bidirectional: a finished block's keys would still move a little as later positions are filled,
and the cache keeps them as they were when it was stored (an approximation; bench/block_cache.py
measures how much it changes the text).

`forward(x, 0, N, store=False)` is the plain forward pass of the model (tests/test_block_cache.py
checks it against transformers' own to float rounding). Supported: `BertForMaskedLM` (BERT,
MiniLM, the embedded model); `supports(model)` says whether a model is one.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def supports(model) -> bool:
    """Whether `model` is a BERT masked LM whose layers this module can run one by one."""
    bert = getattr(model, "bert", None)
    layers = getattr(getattr(bert, "encoder", None), "layer", None)
    return (getattr(getattr(model, "config", None), "model_type", "") == "bert" and layers is not None
            and hasattr(model, "cls") and hasattr(layers[0].attention, "self"))


def block_ids(n: int, gen_start: int, gen_length: int, block_length: int) -> torch.Tensor:
    """Each position's block for a block-causal mask: -1 for the prompt, 0, 1, ... for the blocks of
    the generated part, one past the last block for what follows it (e.g. [SEP])."""
    rel = torch.arange(n) - gen_start
    last = gen_length // block_length
    return torch.where(rel < 0, -1, torch.where(rel >= gen_length, last, rel.div(block_length, rounding_mode="floor")))


def _heads(t: torch.Tensor, heads: int, d: int) -> torch.Tensor:
    """(B, n, heads * d) -> (B, heads, n, d)."""
    return t.view(t.shape[0], t.shape[1], heads, d).transpose(1, 2)


class BertKV:
    """A BERT masked LM run layer by layer, with each layer's keys and values kept for reuse."""

    def __init__(self, model, block_of: torch.Tensor | None = None):
        if not supports(model):
            raise ValueError("the block cache runs BERT-style masked LMs only")
        self.model = model
        self.block_of = block_of  # None: bidirectional (the model's own attention); else block-causal
        self.keys: list[torch.Tensor] = []  # per layer (B, heads, N, d) as last stored
        self.values: list[torch.Tensor] = []

    def _mask(self, lo: int, hi: int, n: int, device) -> torch.Tensor | None:
        """Who sees whom (True: may attend): everyone everyone, or key j from query i iff block(j) <= block(i)."""
        if self.block_of is None:
            return None
        b = self.block_of.to(device)
        return b[None, :n] <= b[lo:hi, None]

    @torch.no_grad()
    def forward(self, x: torch.Tensor, lo: int, hi: int, store: bool) -> torch.Tensor:
        """Logits (B, hi - lo, vocab) of positions [lo, hi) of `x` (B, N). The other positions' keys and
        values come from the last stored pass; `store` keeps this pass's (it must then cover all N)."""
        n = x.shape[1]
        if store and (lo, hi) != (0, n):
            raise ValueError("a pass that stores the cache computes every position")
        if (lo, hi) != (0, n) and (not self.keys or self.keys[0].shape[0] != x.shape[0]
                                   or self.keys[0].shape[2] != n):
            raise ValueError("the cache holds no pass of this canvas: store one first")
        bert = self.model.bert
        pos = torch.arange(lo, hi, device=x.device)[None]
        h = bert.embeddings(input_ids=x[:, lo:hi], position_ids=pos)
        mask = self._mask(lo, hi, n, x.device)
        keys, values = [], []
        for i, layer in enumerate(bert.encoder.layer):
            att = layer.attention.self
            heads, d = att.num_attention_heads, att.attention_head_size
            q, k, v = (_heads(proj(h), heads, d) for proj in (att.query, att.key, att.value))
            if (lo, hi) != (0, n):  # every other position's key and value as stored
                k = torch.cat([self.keys[i][:, :, :lo], k, self.keys[i][:, :, hi:]], 2)
                v = torch.cat([self.values[i][:, :, :lo], v, self.values[i][:, :, hi:]], 2)
            keys.append(k)
            values.append(v)
            # softmax(q K^T / sqrt(d)) V over the keys each query may see
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=att.scaling)
            a = a.transpose(1, 2).reshape(h.shape[0], h.shape[1], heads * d)
            h_att = layer.attention.output(a, h)  # LayerNorm(h + W_o a)
            h = layer.output(layer.intermediate(h_att), h_att)  # LayerNorm(h_att + FFN(h_att))
        if store:
            self.keys, self.values = keys, values
        return self.model.cls(h)
