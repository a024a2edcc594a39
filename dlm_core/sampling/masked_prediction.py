"""The model's prediction at the masked rows of a canvas, for the masked sampler (masked_sampler.py) only:
its row maxima, log-normalisers, top k and exact draws from softmax(logits / tau), each computed when
first asked for and kept while the prediction is reused.

Over a large vocabulary (a real model's tens of thousands of ids) the top k and the draws search in two
levels, chunks of CHUNK ids first, so a step costs about one pass over the logits; the draws stay exact
(`Prediction.draw`, docs/maths.md section 1).
"""

from __future__ import annotations

import math

import torch

CHUNK = 256  # ids per chunk in the two-level searches over a large vocabulary (top k, draws)


def topk_rows(lg: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(values, ids) of the k largest entries of each row of lg (M, V), largest first, as torch.topk;
    for a large vocabulary found among the k chunks of CHUNK ids with the largest maxima (they hold
    the k largest values) and the last, shorter chunk: one fast pass over the row instead of a
    selection over all of it. Which of several equal values is listed is not specified."""
    n_rows, n_ids = lg.shape
    k = min(k, n_ids)
    full = n_ids // CHUNK
    if full < 8 * k or n_rows == 0:
        return torch.topk(lg, k, dim=-1)
    body = lg[:, :full * CHUNK].view(n_rows, full, CHUNK)
    chunks = torch.topk(body.amax(-1), k, dim=-1).indices  # (M, k)
    vals = body[torch.arange(n_rows, device=lg.device)[:, None], chunks].reshape(n_rows, k * CHUNK)
    ids = (chunks[..., None] * CHUNK + torch.arange(CHUNK, device=lg.device)).reshape(n_rows, k * CHUNK)
    if full * CHUNK < n_ids:
        vals = torch.cat([vals, lg[:, full * CHUNK:]], 1)
        ids = torch.cat([ids, torch.arange(full * CHUNK, n_ids, device=lg.device).expand(n_rows, -1)], 1)
    v, j = torch.topk(vals, k, dim=-1)
    return v, ids.gather(1, j)


def _chunk_width(n_ids: int) -> int:
    """The draws' chunk: CHUNK ids, or single ids for a small vocabulary."""
    return 1 if n_ids <= CHUNK else CHUNK


def _chunk_sums(w: torch.Tensor) -> torch.Tensor:
    """Sums of each row of w (M, V) over consecutive chunks of _chunk_width(V) ids (the last may be shorter)."""
    width = _chunk_width(w.shape[1])
    if width == 1:
        return w
    full = w.shape[1] // width
    sums = w[:, :full * width].view(w.shape[0], full, width).sum(-1)
    return torch.cat([sums, w[:, full * width:].sum(-1, keepdim=True)], 1) if full * width < w.shape[1] else sums


# A float32 chunk sum of exp((logit - max) / tau) is within a relative FLOAT32_SLACK of the exact one
# when every term's exponent is above -87 (float32 rounding of the exponent, at most 2^-24 of it per
# operation: < 1.1e-5; the exponential, <= 2 ulp; the sum of <= CHUNK terms in any order: < 1.6e-5),
# and a term below e^-87 (one that float32 may flush) adds at most UNDERFLOW.
FLOAT32_SLACK = 1e-4
UNDERFLOW = math.exp(-87.0)


class Prediction:
    """p_theta(. | z_t) at the masked positions of a canvas: the rows (M, vocab) of the float32 logits
    there ([MASK] and suppressed ids at -inf). What a step reads of it (the row maxima, the
    log-normalisers, the top k, draws) is computed when first asked for and kept while the
    prediction is reused (the model output did not change)."""

    def __init__(self, logits: torch.Tensor, masked: torch.Tensor, top: int = 0):
        self.rows = masked.reshape(-1).nonzero().squeeze(1)  # indices into the flattened canvas, sorted
        self.logits = logits.reshape(-1, logits.shape[-1]).index_select(0, self.rows)  # (M, vocab) float32
        self._max: torch.Tensor | None = None
        self._lse: torch.Tensor | None = None
        self._top: tuple[torch.Tensor, torch.Tensor] | None = None
        self._masses: dict = {}  # tau -> the chunk masses and totals of every row (see _chunk_masses)
        self._records = bool(top)  # a record will read every row's top k (and so its log-normaliser)
        if top:  # the top k now: the row maxima come with it
            self.top(top)

    def __len__(self) -> int:
        return len(self.rows)

    def release(self) -> None:
        """Let go of the chunk masses (a record made later recomputes what it needs from the logits)."""
        self._masses.clear()

    @property
    def m(self) -> torch.Tensor:
        """(M, 1) float64: the largest logit of each row."""
        if self._max is None:
            top = self._top[0][:, :1] if self._top is not None else self.logits.amax(-1, keepdim=True)
            self._max = top.double()
        return self._max

    def _chunk_masses(self, tau: float, sel: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """For each row (or the rows `sel`): (masses (M', chunks) float64, total (M',) float64). A chunk's mass
        is its float32 sum of exp((logit - m) / tau) enlarged by FLOAT32_SLACK and UNDERFLOW per id, so it is
        never below the exact sum of its weights; total is the plain float32-summed sum over the row (the
        normaliser of softmax(logits / tau) over exp(m / tau), to a relative 1e-7 or so). One pass over the
        vocabulary in float32; cached for every row."""
        if sel is not None and tau == 1 and self._records:
            sel_rows, sel = sel, None  # the record needs them for every row anyway: one pass for all
            masses, total = self._chunk_masses(tau)
            return masses[sel_rows], total[sel_rows]
        if tau in self._masses:
            masses, total = self._masses[tau]
            return (masses, total) if sel is None else (masses[sel], total[sel])
        lg, m = (self.logits, self.m) if sel is None else (self.logits[sel], self.m[sel])
        e = lg - m.float()
        if tau != 1:
            e.div_(tau)
        sums = _chunk_sums(e.exp_()).double()
        total = sums.sum(-1)
        masses = sums.mul_(1 + FLOAT32_SLACK).add_(_chunk_width(lg.shape[1]) * UNDERFLOW)
        if sel is None:
            self._masses[tau] = (masses, total)
        return masses, total

    def _log_normaliser(self, sel: torch.Tensor | None) -> torch.Tensor:
        if self.logits.shape[1] <= CHUNK:  # a small vocabulary: in float64
            return torch.logsumexp((self.logits if sel is None else self.logits[sel]).double(), -1)
        m = self.m if sel is None else self.m[sel]
        return m[:, 0] + self._chunk_masses(1.0, sel)[1].log()

    @property
    def lse(self) -> torch.Tensor:
        """(M,) float64: log sum_v exp(logit_v) = m + log sum_v exp(logit_v - m); for a large vocabulary the
        terms and their sum in float32 (relative error about 1e-7), for a small one in float64."""
        if self._lse is None:
            self._lse = self._log_normaliser(None)
        return self._lse

    def lse_of(self, sel: torch.Tensor | None) -> torch.Tensor:
        """lse of the rows `sel` (all for None), without computing it for the others."""
        if sel is None or self._lse is not None or 1.0 in self._masses:
            return self.lse if sel is None else self.lse[sel]
        return self._log_normaliser(sel)

    def top(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(values (M, k) float32, ids (M, k)): the k largest logits of each row, largest first."""
        if self._top is None or self._top[0].shape[-1] < min(k, self.logits.shape[-1]):
            self._top = topk_rows(self.logits, k)
        return self._top[0][:, :k], self._top[1][:, :k]

    def top_probs(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, probabilities in float64) of the k most likely ids of each row."""
        v, ids = self.top(k)
        return ids, (v.double() - self.lse[:, None]).exp_()

    def argmax(self) -> torch.Tensor:
        """The most likely id of each row; the lowest of equal maxima (as torch.argmax)."""
        v, ids = self.top(2)
        ids = ids[:, 0].clone()
        if v.shape[-1] > 1:
            tied = v[:, 0] == v[:, 1]
            if tied.any():
                ids[tied] = self.logits[tied].argmax(-1)
        return ids

    def probs_of(self, ids: torch.Tensor, sel: torch.Tensor | None = None) -> torch.Tensor:
        """p_theta(id | z_t) of one id per row (of the rows `sel`), float64."""
        lg = self.logits if sel is None else self.logits[sel]
        return (lg.gather(-1, ids[:, None])[:, 0] - self.lse_of(sel)).exp_()

    def draw(self, tau: float, generator: torch.Generator,
             sel: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """One exact draw from softmax(logits / tau) for each row (or the rows `sel`), and its probability
        p_theta(id | z_t). The exact weights are w_v = exp((logit_v - m) / tau) in float64; the draw reads
        only the chunk masses (`_chunk_masses`, float32, each at least its chunk's exact weight) over the
        whole row and exact weights within one chunk: one uniform u per row, target = u times the row's
        total mass; the chunk whose running mass passes the target; within it, what is left against the
        running sum of the chunk's exact weights: the first id whose running weight passes it, or, past
        the chunk's weight (the slack of its mass: about 1e-4 of the draws), a new uniform for that row.
        Accepting a chunk with probability (its exact weight) / (its mass) makes the result exact: each id
        comes out with probability proportional to w_v, up to float64 rounding. A small vocabulary (at most
        CHUNK ids) takes the plain inverse CDF over its exact weights. An id of zero weight (-inf logit) is
        never drawn."""
        lg, m = (self.logits, self.m) if sel is None else (self.logits[sel], self.m[sel])
        n_rows, n_ids = lg.shape
        width = _chunk_width(n_ids)
        if width == 1:  # a small vocabulary: the plain inverse CDF over the exact float64 weights
            w = lg.double().sub_(m)
            w = (w if tau == 1 else w.div_(tau)).exp_()
            cdf = w.cumsum(-1)
            total = cdf[:, -1]
            u = torch.rand(n_rows, generator=generator, device=lg.device, dtype=torch.float64)
            target = torch.minimum(u * total, torch.nextafter(total, torch.zeros_like(total)))[:, None]
            j = torch.searchsorted(cdf, target, right=True)
            return j[:, 0], (w.gather(1, j)[:, 0] / total if tau == 1 else self.probs_of(j[:, 0], sel))
        masses, _ = self._chunk_masses(tau, sel)
        cum = masses.cumsum(-1)
        cand = torch.zeros(n_rows, dtype=torch.long, device=lg.device)
        todo = torch.arange(n_rows, device=lg.device)
        while len(todo):
            every = len(todo) == n_rows
            c_cum, c_lg, c_m = (cum, lg, m) if every else (cum[todo], lg[todo], m[todo])
            total = c_cum[:, -1]
            u = torch.rand(len(todo), generator=generator, device=lg.device, dtype=torch.float64)
            # u * total < total (never past the last chunk, even when the product rounds up)
            target = torch.minimum(u * total, torch.nextafter(total, torch.zeros_like(total)))[:, None]
            chunk = torch.searchsorted(c_cum, target, right=True).clamp_max_(c_cum.shape[1] - 1)
            start = torch.where(chunk > 0, c_cum.gather(1, (chunk - 1).clamp_min(0)), 0.0)
            left = target - start
            ids = chunk * width + torch.arange(width, device=lg.device)
            w = c_lg.gather(1, ids.clamp_max(n_ids - 1)).double().sub_(c_m)
            w = (w if tau == 1 else w.div_(tau)).exp_()
            w = torch.where(ids < n_ids, w, 0.0)
            running = w.cumsum(-1)
            mass = c_cum.gather(1, chunk) - start  # (its rounding: a few ulp of the row's total)
            if bool((running[:, -1:] > mass * (1 + 1e-6) + 1e-12 * total[:, None]).any()):
                raise RuntimeError("a chunk's exact weight exceeds its float32 bound: FLOAT32_SLACK is too small")
            ok = left[:, 0] < running[:, -1]
            j = torch.searchsorted(running, left, right=True).clamp_max_(width - 1)
            cand[todo[ok]] = ids.gather(1, j)[ok, 0]
            todo = todo[~ok]
        return cand, self.probs_of(cand, sel)
