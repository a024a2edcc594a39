"""The sentences a toy training sees (training.train): fresh batches stratified by the exact distribution of the
language (`data_batches`, every recipe's), or epochs over a fixed training set of U sentences drawn from it
(`fixed_set`, `epoch_batches`: the training lab's data choice, docs/maths.md section 10)."""

from __future__ import annotations

import torch

from dlm_core.toy_language import support_arrays


def fixed_set(size: int, seed: int) -> torch.Tensor:
    """U sentences drawn independently from p(x) with their own seed (repeats allowed, as in any corpus)."""
    sa = support_arrays()
    g = torch.Generator().manual_seed(10_000 + int(seed))
    return torch.as_tensor(sa.x)[torch.multinomial(torch.as_tensor(sa.p), int(size), replacement=True, generator=g)]


def epoch_batches(data: torch.Tensor, batch_size: int, generator: torch.Generator):
    """Endless batches of a fixed training set, epoch after epoch, each epoch in a new random order (a batch may
    span the end of one epoch and the start of the next)."""
    stream = torch.zeros((0, data.shape[1]), dtype=data.dtype)
    while True:
        while len(stream) < batch_size:
            stream = torch.cat([stream, data[torch.randperm(len(data), generator=generator)]])
        batch, stream = stream[:batch_size], stream[batch_size:]
        yield batch


def training_batches(cfg, generator: torch.Generator):
    """Fresh stratified batches of the language (`data_batches`), or epochs over a fixed set of `train_size`."""
    if cfg.train_size > 0:
        return epoch_batches(fixed_set(cfg.train_size, cfg.seed), cfg.batch_size, generator)
    return data_batches(cfg.batch_size, generator)


def data_batches(batch_size: int, generator: torch.Generator):
    """Endless batches of sentences from the exact distribution of the language, stratified: one uniform
    u_0 per batch, and sentence b is the one where the cumulative p(x) passes (u_0 + b) / B (systematic
    sampling). Every sentence then comes floor(B p(x)) or ceil(B p(x)) times, so a batch carries the
    distribution itself rather than a random draw from it; the order within a batch is shuffled."""
    sa = support_arrays()
    x = torch.as_tensor(sa.x)
    cdf = torch.cumsum(torch.as_tensor(sa.p), 0)
    cdf[-1] = 1.0
    steps = torch.arange(batch_size, dtype=torch.float64)
    while True:
        u = (torch.rand((), generator=generator, dtype=torch.float64) + steps) / batch_size
        idx = torch.searchsorted(cdf, u, right=True).clamp(max=len(cdf) - 1)
        yield x[idx[torch.randperm(batch_size, generator=generator)]]
