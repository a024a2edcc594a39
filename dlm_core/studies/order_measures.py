"""The unmasking-order study's settings and measures (order_study.py runs it): Kendall's tau-b between
commit step and position, its exact distribution where the order does not depend on the model, shares
with clustered standard errors, and the commit steps of a masked sampler run. numpy only.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from itertools import combinations

import numpy as np

from dlm_core import ASSETS

RESULTS = ASSETS / "order_study.json"
COMMAND = "python -m dlm_core order-study --json --out assets/order_study.json"
EXACT_STRATEGIES = ("random", "ancestral")  # their commit order does not depend on the model
CLASSES = ("punctuation", "function word", "content word", "subword", "special")
FREQUENCY_BUCKETS = ((1, 10), (11, 100), (101, 1000), (1001, None))  # frequency ranks, 1 = the most frequent
MAX_EXACT_ASSIGNMENTS = 2_000_000  # T^L reveal-step assignments enumerated for the exact ancestral tau

# A small fixed list of English function words, with the early-modern forms of the embedded model's
# Shakespeare (thou, thee, hath, ...). A word not in it that has a letter or digit is a content word.
FUNCTION_WORDS = frozenset("""
a an the and or but nor if then else so as of at by for from in into on onto to with without about above after
against among before behind below between beyond during except near off over since through till until up upon
down out under unto within i me my mine myself we us our ours ourselves you your yours yourself yourselves he him
his himself she her hers herself it its itself they them their theirs themselves thou thee thy thine ye this that
these those who whom whose which what where when why how there here is am are was were be been being have has had
having do does did doing shall should will would may might must can could hath doth dost art wilt shalt canst not
no nay yea aye all any both each every some such own same than too very o oh
""".split())


@dataclass
class OrderStudySettings:
    """What the study runs; each field says why it has its value."""

    toy_steps: tuple[int, ...] = (2, 3, 6)  # T: 3, 2 or 1 units committed per step (spread_counts(6, T))
    toy_n: int = 20000  # sampled sentences per (strategy, T): a share's SE is at most 0.5 / sqrt(n) = 0.0035
    toy_temperature: float = 1.0  # temperature of the toy candidates' exact draws (1: sample p_theta, as the
    # Reverse page does by default)
    toy_schedule: str = "linear"  # alpha_t of the ancestral strategy (pi_j = 1 / T for linear)
    real: bool = True  # run the real-model part (False: the toy part only, seconds)
    real_strategies: tuple[str, ...] = ("low-confidence", "random")  # confidence order against no order
    real_n: int = 256  # generations per strategy: two prompts from each of the 128 held-out passages
    real_gen_length: int = 32  # generated tokens per canvas (the model was trained on 64)
    real_steps: int = 16  # two tokens per step: 512 generations take about 8 minutes on 2 CPU cores
    real_prompt_tokens: int = 8  # held-out Shakespeare before the masks: each canvas writes a different text
    real_temperature: float = 0.0  # LLaDA's low-confidence setting; the prompts (not noise) make the runs differ
    real_batch: int = 32  # canvases per sampler run (memory: batch x length x vocabulary logits)
    position_buckets: int = 8  # relative-position buckets of the generated part
    step_bins: int = 8  # commit-step bins (eighths of the steps)
    tau_bins: int = 16  # histogram bins of Kendall's tau on [-1, 1]: one per value (2k - 15)/15 of 6 untied positions
    seed: int = 0
    command: str = field(default=COMMAND, compare=False)  # what produced the results (set by the CLI)

    @classmethod
    def quick(cls, **kw) -> OrderStudySettings:
        """About a minute on 2 CPU cores: fewer toy sentences and real generations, the same shapes."""
        return cls(**{"toy_n": 2000, "real_n": 24, **kw})

    def key(self) -> str:
        """The settings as one string (what a shared cache is keyed by); the command does not count."""
        d = asdict(self)
        d.pop("command")
        return json.dumps(d, sort_keys=True)


# ------------------------------------------------------------------------- Kendall's tau


def kendall_tau_b(steps: np.ndarray) -> np.ndarray:
    """tau_b between commit step and position, per row of steps (n, m) (column = position).

    tau_b = (C - D) / sqrt(n0 (n0 - n2)): C - D = sum_{i<k} sign(step_k - step_i) (positions have no
    ties, n1 = 0), n2 = pairs committed at the same step. NaN where n2 = n0 (all at one step)."""
    s = np.asarray(steps, dtype=np.int64)
    m = s.shape[1]
    i, k = np.triu_indices(m, 1)
    d = np.sign(s[:, k] - s[:, i])  # (n, pairs): +1 concordant (left first), -1 discordant, 0 tied
    n0 = m * (m - 1) / 2
    n2 = (d == 0).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = d.sum(1) / np.sqrt(n0 * (n0 - n2))
    return np.where(n2 < n0, tau, np.nan)


def tau_summary(tau: np.ndarray, edges: np.ndarray, distinct: bool = False) -> dict:
    """Mean +- SE (over the rows where tau is defined) and the histogram (shares of those rows); with
    `distinct`, also the share of each distinct value (few for 6 positions: the exact distribution's form)."""
    ok = tau[~np.isnan(tau)]
    n = len(ok)
    hist = np.histogram(ok, bins=edges)[0] / max(n, 1)
    out = {"mean": float(ok.mean()) if n else None,
           "se": float(ok.std(ddof=1) / math.sqrt(n)) if n > 1 else None,
           "n_defined": int(n), "n_undefined": int(len(tau) - n), "hist": hist.tolist()}
    if distinct:
        values, counts = np.unique(np.round(ok, 12), return_counts=True)
        out["values"] = [[float(v), float(c / n)] for v, c in zip(values, counts)]
    return out


def tau_edges(bins: int) -> np.ndarray:
    return np.linspace(-1.0, 1.0, bins + 1)


# ------------------------------------------------------- exact, model-independent orders


def ancestral_step_probs(steps: int, schedule: str = "linear") -> np.ndarray:
    """pi_j = q_j prod_{k<j} (1 - q_k): the step at which MDLM's sampler reveals a position.

    q_k = (alpha_s - alpha_t) / (1 - alpha_t) on schedules.time_grid(T), q_T = 1 (the last step
    reveals everything left, as MaskedSampler does)."""
    from dlm_core import schedules

    alpha, grid = schedules.get(schedule).alpha, schedules.time_grid(steps)
    pi, left = np.zeros(steps), 1.0
    for j in range(steps):
        a_t, a_s = alpha(float(grid[j])), alpha(float(grid[j + 1]))
        q = 1.0 if j == steps - 1 else (a_s - a_t) / (1.0 - a_t)  # (alpha_s - alpha_t) / (1 - alpha_t)
        pi[j] = left * q
        left *= 1.0 - q
    return pi


def exact_step_probs(strategy: str, steps: int, length: int, schedule: str = "linear") -> np.ndarray | None:
    """The probability that a given position is committed at step j (the same for every position), for
    the strategies whose order does not depend on the model; None for the others."""
    from dlm_core.sampling.masked_sampler import spread_counts

    if strategy == "random":
        return np.array(spread_counts(length, steps), dtype=np.float64) / length  # c_j / L
    if strategy == "ancestral":
        return ancestral_step_probs(steps, schedule)
    return None


def _fixed_count_assignments(counts: list[int], length: int):
    """Every assignment of positions to steps with counts[j] positions at step j (each equally likely)."""

    def rec(j: int, left: tuple[int, ...], row: list[int]):
        if j == len(counts):
            yield list(row)
            return
        for chosen in combinations(left, counts[j]):
            for i in chosen:
                row[i] = j + 1
            yield from rec(j + 1, tuple(i for i in left if i not in chosen), row)

    yield from rec(0, tuple(range(length)), [0] * length)


def exact_tau_distribution(strategy: str, steps: int, length: int, schedule: str = "linear") -> dict | None:
    """The exact distribution of tau_b for random or ancestral order: {values: [[tau, P], ...] (tau
    defined), p_undefined, mean (given defined)}; None when the order depends on the model.

    random: all multinomial(L; c_1..c_T) assignments, equally likely; ancestral: all T^L assignments,
    P = prod_i pi_{step_i} (positions independent)."""
    from dlm_core.sampling.masked_sampler import spread_counts

    if strategy == "random":
        rows = np.array(list(_fixed_count_assignments(spread_counts(length, steps), length)))
        p = np.full(len(rows), 1.0 / len(rows))
    elif strategy == "ancestral":
        if steps ** length > MAX_EXACT_ASSIGNMENTS:
            return None
        pi = ancestral_step_probs(steps, schedule)
        rows = np.indices((steps,) * length).reshape(length, -1).T + 1  # every assignment, steps 1..T
        p = np.prod(pi[rows - 1], axis=1)
    else:
        return None
    tau = kendall_tau_b(rows)
    ok = ~np.isnan(tau)
    dist: dict[float, float] = {}
    for v, q in zip(np.round(tau[ok], 12), p[ok]):
        dist[float(v)] = dist.get(float(v), 0.0) + float(q)
    p_def = float(p[ok].sum())
    mean = float((tau[ok] * p[ok]).sum() / p_def) if p_def > 0 else None
    return {"values": sorted([v, q] for v, q in dist.items()), "p_undefined": float(p[~ok].sum()), "mean": mean}


def exact_hist(values: list, edges: np.ndarray) -> list[float]:
    """An exact tau distribution binned like a sampled histogram (shares of the defined rows)."""
    v = np.array([a for a, _ in values])
    w = np.array([b for _, b in values])
    h = np.histogram(v, bins=edges, weights=w)[0]
    return (h / w.sum()).tolist()


# ------------------------------------------------------------------------- shares with SE


def clustered_share(indicator: np.ndarray, member: np.ndarray) -> tuple[float | None, float | None]:
    """R = sum(indicator & member) / sum(member) over rows (n, m), with the ratio estimator's standard
    error clustered by row (the units of one sequence are not independent):
    SE^2 = sum_b (a_b - R n_b)^2 / (N (N - 1)) / nbar^2, a_b and n_b the row sums, nbar = mean n_b."""
    a = (indicator * member).sum(1).astype(np.float64)
    nb = member.sum(1).astype(np.float64)
    total = nb.sum()
    if total == 0:
        return None, None
    r = a.sum() / total
    n = len(nb)
    if (nb > 0).sum() < 2:  # one sequence holds every member: no spread to estimate an error from
        return float(r), None
    se = math.sqrt(((a - r * nb) ** 2).sum() / (n * (n - 1))) / (total / n)
    return float(r), float(se)


def commit_steps(sampler, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """Run a MaskedSampler to the end; (steps (B, hi - lo): the final commit step of each position
    (0: never), commits (B, T): how many positions each step committed)."""
    steps = np.zeros((sampler.x.shape[0], hi - lo), dtype=np.int64)
    per_step = []
    while not sampler.done:
        out = sampler.step()
        c = out.committed[:, lo:hi].numpy()
        steps[c] = out.step  # the last commit counts (Trajectory.commit_step) ...
        steps[out.remasked[:, lo:hi].numpy()] = 0  # ... and a re-masked position waits for its next one
        per_step.append(c.sum(1))
    return steps, np.stack(per_step, 1)


