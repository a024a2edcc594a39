"""The unmasking-order study: what a masked DLM commits first, and how far from left to right.

For a masked sampler (docs/maths.md section 1) every generated position is committed at exactly one
step j (its final commit: `Trajectory.commit_step`). The study measures, over many sequences:

- **Toy model** (the shipped masked checkpoint, L = 6): for each strategy of
  `masked_sampler.STRATEGIES` and several T, the matrix P[i, j] = P(position i is committed at step j),
  the same by grammatical role (`toy_language.unit_roles`), and Kendall's tau between commit step and
  position. For `random` and `ancestral` the order does not depend on the model, so P and the
  distribution of tau are exact (the role view is not: what is written at a position, hence its role,
  depends on what was committed before it):

  - random (LLaDA's fixed-count sampler with uniform scores): step j commits c_j = spread_counts(L, T)[j]
    of the still-masked positions, chosen uniformly, so the order is a uniform random permutation cut
    into blocks of c_1, ..., c_T and P[i, j] = c_j / L for every i;
  - ancestral (MDLM): a position still masked before step k is revealed with probability
    q_k = (alpha_s - alpha_t) / (1 - alpha_t) (q_T = 1), independently of the others, so its step is
    j with probability pi_j = q_j prod_{k<j} (1 - q_k) (pi_j = 1 / T for the linear schedule) and
    P[i, j] = pi_j.

  The confidence strategies (low-confidence, margin, entropy) are sampled, with standard errors.
- **Real model** (the embedded one, or any loaded `HFMaskedLM`): for low-confidence and random order,
  the commit step of each generated token by relative position, by word class (punctuation, function
  word, content word, subword continuation) and by frequency rank.

Kendall's tau is tau-b (Kendall 1945), which accounts for ties (positions committed at the same step):
tau_b = (C - D) / sqrt((n0 - n1)(n0 - n2)), n0 = m(m - 1)/2 pairs, n1 = 0 ties in position, n2 = pairs
committed at the same step. +1: strictly left to right, -1: right to left, 0: no tendency. It is
undefined when every position is committed at the same step (n2 = n0); such sequences are left out
and counted.

`compute()` returns one JSON-able dict (shipped as assets/order_study.json, drawn by the Unmasking
order page). Only numpy is imported at the top, so the page reads the file without loading torch.
"""

from __future__ import annotations

import json
import math
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "assets" / "order_study.json"
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
    toy_temperature: float = 1.0  # Gumbel-max temperature of the toy candidates (1: sample p_theta, as the
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
    from . import schedules

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
    from .masked_sampler import spread_counts

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
    from .masked_sampler import spread_counts

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


# ------------------------------------------------------------------------------- toy part


def toy_commit_steps(model, strategy: str, steps: int, n: int, seed: int, temperature: float = 1.0,
                     schedule: str = "linear") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n toy sentences through the masked sampler in one batch: (final ids (n, L), commit steps (n, L),
    commits per step (n, T))."""
    from .variants import VARIANTS

    variant = VARIANTS["masked"]
    cfg = variant.sampler_config(steps, seed, strategy=strategy, temperature=temperature, schedule=schedule)
    cfg.top_k = 2  # no records are kept; margin needs the top 2
    sampler = variant.make_sampler(model, cfg, batch=n)
    s, per_step = commit_steps(sampler, 0, sampler.x.shape[1])
    return sampler.x.cpu().numpy(), s, per_step


def role_table(x: np.ndarray) -> np.ndarray:
    """(n, L) role index (into toy_language.ROLES) of each unit of each sentence."""
    from .toy_language import ROLES, unit_roles

    uniq, inverse = np.unique(x, axis=0, return_inverse=True)
    table = np.array([[ROLES.index(r) for r in unit_roles(tuple(row))] for row in uniq.tolist()])
    return table[inverse.reshape(-1)]


def toy_cell(model, strategy: str, steps: int, st: OrderStudySettings, seed: int) -> dict:
    """One (strategy, T) cell: P[i, j] and tau_b (sampled, and exact where the order is model-independent),
    and P(step j | role) (always sampled: the role depends on the content)."""
    from .masked_sampler import SCORES, spread_counts
    from .toy_language import ROLES, support

    x, s, _ = toy_commit_steps(model, strategy, steps, st.toy_n, seed, st.toy_temperature, st.toy_schedule)
    n, length = s.shape
    edges = tau_edges(st.tau_bins)
    P = np.stack([(s == j).mean(0) for j in range(1, steps + 1)], 1)  # (L, T): P[i, j]
    cell = {"strategy": strategy, "T": steps, "n": n, "seed": seed,
            "counts": spread_counts(length, steps) if strategy in SCORES else None,
            "P": P.tolist(), "P_se": np.sqrt(P * (1 - P) / n).tolist(),
            "mean_step": (s.mean(0)).tolist(), "mean_step_se": (s.std(0, ddof=1) / math.sqrt(n)).tolist(),
            "validity": float(np.mean([tuple(r) in support() for r in x.tolist()]))}
    exact = exact_step_probs(strategy, steps, length, st.toy_schedule)
    cell["P_exact"] = None if exact is None else np.tile(exact, (length, 1)).tolist()
    # by role: P(step j | role) and the mean step, clustered by sentence
    roles = role_table(x)
    by_role = {}
    for r, name in enumerate(ROLES):
        member = roles == r
        if not member.any():
            continue
        shares = [clustered_share(s == j, member) for j in range(1, steps + 1)]
        mean, mean_se = clustered_share(s, member)
        first, first_se = clustered_share(member, s == 1)  # share of the step-1 commits that have this role
        by_role[name] = {"count": int(member.sum()), "P": [a for a, _ in shares], "P_se": [b for _, b in shares],
                         "mean_step": mean, "mean_step_se": mean_se, "first_share": first, "first_share_se": first_se}
    # sampled even for random / ancestral: which role a position takes depends on what was committed before
    # it (units committed together are drawn independently; the model errs), so role and step need not be
    # independent although the order is blind to content
    cell["roles"] = by_role
    cell["tau"] = tau_summary(kendall_tau_b(s), edges, distinct=True)
    ex = exact_tau_distribution(strategy, steps, length, st.toy_schedule)
    if ex is not None:
        ex["hist"] = exact_hist(ex["values"], edges)
    cell["tau_exact"] = ex
    return cell


def toy_study(st: OrderStudySettings, model=None, progress: Callable | None = None) -> dict:
    """Every strategy at every T on the toy model (default: the shipped masked checkpoint)."""
    import torch

    from . import training
    from .masked_sampler import STRATEGIES
    from .toy_language import ROLES, L

    if model is None:
        model = training.load_checkpoint(training.default_checkpoint("masked"))[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny toy model (docs/maths.md: two threads are erratic)
    cells: dict = {s: {} for s in STRATEGIES}
    jobs = [(s, T) for T in st.toy_steps for s in STRATEGIES]
    try:
        for done, (strategy, T) in enumerate(jobs):
            seed = st.seed + 1000 * T + STRATEGIES.index(strategy)
            cells[strategy][str(T)] = toy_cell(model, strategy, T, st, seed)
            if progress is not None:
                progress((done + 1) / len(jobs), f"toy: {strategy}, T = {T}")
    finally:
        torch.set_num_threads(threads)
    return {"L": L, "steps": list(st.toy_steps), "strategies": list(STRATEGIES), "roles": list(ROLES),
            "exact_strategies": list(EXACT_STRATEGIES), "tau_edges": tau_edges(st.tau_bins).tolist(),
            "cells": cells}


# ------------------------------------------------------------------------------ real part


def word_marker(tokenizer) -> str:
    """How the tokenizer marks words: 'wordpiece' (a continuation starts with ##), 'sentencepiece' (a word
    starts with ▁), 'byte-bpe' (a word starts with Ġ), or 'none'."""
    vocab = list(tokenizer.get_vocab())
    counts = {name: sum(t.startswith(sign) for t in vocab) for name, sign in MARKERS.items()}
    best = max(counts, key=counts.get)
    return best if counts[best] > 0.05 * len(vocab) else "none"


MARKERS = {"wordpiece": "##", "sentencepiece": "▁", "byte-bpe": "Ġ"}  # continuation sign / word-start signs


def _bare(token: str, marker: str) -> str:
    """The token's text without its marker."""
    sign = MARKERS.get(marker, "")
    return token[len(sign):] if sign and token.startswith(sign) else token


def _continues(token: str, marker: str) -> bool:
    """Whether the token continues the word before it: ## in WordPiece; no word-start sign in the others."""
    if marker == "wordpiece":
        return token.startswith("##")
    return marker in MARKERS and not token.startswith(MARKERS[marker])


def word_classes(tokens: list[str], special: set[str], marker: str) -> list[str]:
    """The class (CLASSES) of each token of one sequence: special tokens; punctuation (no letter or
    digit); subword (continues the word before it); else the word it starts (with its continuations)
    is a function word (FUNCTION_WORDS) or a content word."""
    out = []
    for p, tok in enumerate(tokens):
        bare = _bare(tok, marker)
        if tok in special:
            out.append("special")
        elif not any(c.isalnum() for c in bare):
            out.append("punctuation")
        elif p > 0 and _continues(tok, marker) and tokens[p - 1] not in special:
            out.append("subword")
        else:
            word, q = bare, p + 1
            while q < len(tokens) and tokens[q] not in special and _continues(tokens[q], marker) and any(
                    c.isalnum() for c in _bare(tokens[q], marker)):
                word += _bare(tokens[q], marker)
                q += 1
            out.append("function word" if word.lower().strip(string.punctuation) in FUNCTION_WORDS
                       else "content word")
    return out


def heldout_prompts(n: int, n_tokens: int, tokenizer) -> list[list[int]]:
    """n prompts of n_tokens ids (in `tokenizer`'s vocabulary): windows of the embedded model's held-out
    Shakespeare (assets/embedded-model/heldout.json, never trained on). Generation g reads passage
    g mod 128 from a word start near offset 32 * (g // 128), decoded and tokenized again."""
    from transformers import AutoTokenizer

    from .hf_adapter import EMBEDDED

    if n_tokens == 0:
        return [[] for _ in range(n)]
    passages = json.loads((EMBEDDED / "heldout.json").read_text())["ids"]
    source = AutoTokenizer.from_pretrained(str(EMBEDDED))
    out = []
    for g in range(n):
        ids = passages[g % len(passages)][1:-1]  # without [CLS] and [SEP]
        start = (32 * (g // len(passages))) % max(len(ids) - 3 * n_tokens, 1)
        while start > 0 and source.convert_ids_to_tokens(ids[start]).startswith("##"):
            start -= 1  # begin at a word
        text = source.decode(ids[start: start + 3 * n_tokens])
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"][:n_tokens]
        if len(prompt) < n_tokens:
            raise ValueError(f"held-out passage {g % len(passages)} gives fewer than {n_tokens} prompt tokens")
        out.append(list(prompt))
    return out


def canvas_ends(tokenizer) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a text (BERT: [CLS] and [SEP]), found by
    encoding a word with and without them (as hf_adapter.build_canvas splits its canvas)."""
    plain = tokenizer("word", add_special_tokens=False)["input_ids"]
    full = tokenizer("word", add_special_tokens=True)["input_ids"]
    for k in range(len(full) - len(plain) + 1):
        if full[k: k + len(plain)] == plain:
            return list(full[:k]), list(full[k + len(plain):])
    return [], []


def real_commit_steps(lm, strategy: str, prompts: list[list[int]], st: OrderStudySettings,
                      progress: Callable | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Every canvas [head] + prompt + gen_length masks + [tail] through MaskedSampler, real_batch at a
    time (the chunk that starts at generation j runs with seed + j): (final ids (n, N), commit steps of
    the generated positions (n, gen_length), gen_start)."""
    import torch

    from .masked_sampler import MaskedSampler, MaskedSamplerConfig

    head, tail = canvas_ends(lm.tokenizer)
    gen_start = len(head) + st.real_prompt_tokens
    total = gen_start + st.real_gen_length + len(tail)
    if total > lm.max_positions:
        raise ValueError(f"a canvas of {total} positions does not fit {lm.name} ({lm.max_positions} positions)")
    suppress = tuple(sorted(set(lm.special_ids()) - {lm.mask_id}))  # no [SEP] / [PAD] / [CLS] inside the text
    finals, all_steps = [], []
    for start in range(0, len(prompts), st.real_batch):
        chunk = prompts[start: start + st.real_batch]
        x = torch.tensor([head + p + [lm.mask_id] * st.real_gen_length + tail for p in chunk], dtype=torch.long)
        cfg = MaskedSamplerConfig(steps=st.real_steps, strategy=strategy, temperature=st.real_temperature,
                                  seed=st.seed + start, top_k=2, suppress_ids=suppress)
        sampler = MaskedSampler(lm, cfg, x, gen_start=gen_start, gen_length=st.real_gen_length)
        s, _ = commit_steps(sampler, gen_start, gen_start + st.real_gen_length)
        finals.append(sampler.x.cpu().numpy())
        all_steps.append(s)
        if progress is not None:
            progress(min(start + len(chunk), len(prompts)) / len(prompts), f"{strategy}: {start + len(chunk)} of "
                                                                             f"{len(prompts)} generations")
    return np.concatenate(finals), np.concatenate(all_steps), gen_start


def _group_view(labels: list[str], groups: np.ndarray, rel: np.ndarray, step_bin: np.ndarray, first: np.ndarray,
                n_bins: int) -> dict:
    """Per group (index into labels): count, share of all tokens, mean relative commit step +- SE, the
    distribution over step bins, and its share of the first step's commits (all clustered by generation)."""
    out = {}
    for g, name in enumerate(labels):
        member = groups == g
        mean, se = clustered_share(rel, member)
        bins = [clustered_share(step_bin == b, member) for b in range(n_bins)]
        fs, fs_se = clustered_share(member, first)
        out[name] = {"count": int(member.sum()), "generations": int(member.any(1).sum()),
                     "share": float(member.mean()), "mean_rel_step": mean,
                     "se": se, "P_bins": [a for a, _ in bins], "P_bins_se": [b for _, b in bins],
                     "first_step_share": fs, "first_step_share_se": fs_se}
    return out


def real_study(st: OrderStudySettings, lm=None, progress: Callable | None = None) -> dict:
    """low-confidence against random on a real masked LM (default: the embedded model)."""
    from . import hf_adapter

    if lm is None:
        lm = hf_adapter.load()
    tok = lm.tokenizer
    marker = word_marker(tok)
    special = set(tok.all_special_tokens)
    prompts = heldout_prompts(st.real_n, st.real_prompt_tokens, tok)
    G, S, K = st.real_gen_length, st.real_steps, st.step_bins
    runs = {}
    for k, strategy in enumerate(st.real_strategies):
        def sub(f, text, k=k):
            if progress is not None:
                progress((k + f) / len(st.real_strategies), text)
        runs[strategy] = real_commit_steps(lm, strategy, prompts, st, sub)
    # token strings and classes of the generated positions (classes read on the whole final canvas)
    texts, classes = {}, {}
    for strategy, (final, _, g0) in runs.items():
        rows = [tok.convert_ids_to_tokens(r) for r in final.tolist()]
        texts[strategy] = [r[g0: g0 + G] for r in rows]
        classes[strategy] = np.array([[CLASSES.index(c) for c in word_classes(r, special, marker)[g0: g0 + G]]
                                      for r in rows])
    # frequency ranks: counts over all generated tokens of the study (every strategy pooled), ties by id
    counts = Counter(i for final, _, g0 in runs.values() for row in final[:, g0: g0 + G].tolist() for i in row)
    rank = {i: r + 1 for r, (i, _) in enumerate(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}
    freq_labels = [f"ranks {a}–{b}" if b else f"ranks > {a - 1}" for a, b in FREQUENCY_BUCKETS]

    def bucket(r: int) -> int:
        return next(k for k, (a, b) in enumerate(FREQUENCY_BUCKETS) if r >= a and (b is None or r <= b))

    pos_edges = [round(b * G / st.position_buckets) for b in range(st.position_buckets + 1)]
    pos_labels = [f"{pos_edges[b] + 1}–{pos_edges[b + 1]}" for b in range(st.position_buckets)]
    pos_bucket = np.searchsorted(pos_edges, np.arange(G), side="right") - 1
    edges = tau_edges(st.tau_bins)
    by_strategy = {}
    for strategy, (final, s, g0) in runs.items():
        rel = (s - 1) / max(S - 1, 1)  # relative commit step: 0 = the first step, 1 = the last
        step_bin = np.minimum((s - 1) * K // S, K - 1)
        first = s == 1
        freq = np.vectorize(lambda i: bucket(rank[int(i)]))(final[:, g0: g0 + G])
        pos = np.broadcast_to(pos_bucket, s.shape)
        by_strategy[strategy] = {
            "n": int(s.shape[0]), "tokens": int(s.size), "uncommitted": int((s == 0).sum()),
            "by_class": _group_view(list(CLASSES), classes[strategy], rel, step_bin, first, K),
            "by_frequency": _group_view(freq_labels, freq, rel, step_bin, first, K),
            "by_position": _group_view(pos_labels, pos, rel, step_bin, first, K),
            "tau": tau_summary(kendall_tau_b(s), edges),
            "sample": "".join(tok.convert_tokens_to_string(texts[strategy][0])),
        }
    examples = {}  # the most frequent tokens of each class and frequency bucket (all strategies pooled)
    for name, groups in (("class", classes), ("frequency", None)):
        tally: dict[str, Counter] = {}
        for strategy, (final, _, g0) in runs.items():
            ids = final[:, g0: g0 + G]
            lab = groups[strategy] if groups is not None else np.vectorize(lambda i: bucket(rank[int(i)]))(ids)
            labels = list(CLASSES) if groups is not None else freq_labels
            for t_row, l_row in zip(texts[strategy], lab.tolist()):
                for t, c in zip(t_row, l_row):
                    tally.setdefault(labels[c], Counter())[t] += 1
        examples[name] = {k: [t for t, _ in v.most_common(8)] for k, v in tally.items()}
    return {"model": lm.name, "gen_length": G, "steps": S, "prompt_tokens": st.real_prompt_tokens,
            "temperature": st.real_temperature, "word_marker": marker, "classes": list(CLASSES),
            "frequency_buckets": freq_labels, "position_buckets": pos_labels, "step_bins": K,
            "frequency_source": "counts over every generated token of this study (all strategies pooled); rank 1 "
                                "is the most frequent, ties broken by token id",
            "tau_edges": edges.tolist(), "strategies": by_strategy, "examples": examples}


# ---------------------------------------------------------------------------- findings


def _pct(p: float, se: float | None) -> str:
    """A share in percent, with as many decimals as its standard error needs (at most 2)."""
    if se is None or se == 0:  # no error to show (e.g. every sequence alike)
        return f"{100 * p:.0f} %"
    d = 0 if se >= 0.005 else min(2, -math.floor(math.log10(100 * se)))
    return f"{100 * p:.{d}f} % ± {100 * se:.{d}f} %"


def _exact(v: float) -> str:
    return "0 (exact)" if abs(v) < 1e-12 else f"{v:+.3f} (exact)"


CLASS_WORDS = {"punctuation": "punctuation", "function word": "function words", "content word": "content words",
               "subword": "subword continuations", "special": "special tokens"}
MIN_GENERATIONS = 10  # a class is named in the findings only when this many generations contain it


def format_mean(v: float, se: float | None, signed: bool = False) -> str:
    """v ± se with as many decimals as the standard error needs (2 to 4)."""
    d = 2 if not se or se >= 0.005 else min(4, -math.floor(math.log10(se)))
    v = round(v, d) + 0.0  # no "-0.00"
    return f"{v:{'+' if signed else ''}.{d}f}" + (f" ± {se:.{d}f}" if se is not None else "")


def _lean(mean: float, se: float | None) -> str | None:
    """'left to right' or 'right to left' when tau is more than 3 SE from 0, else None."""
    if not se or abs(mean) <= 3 * se:
        return None
    return "left to right" if mean > 0 else "right to left"


def toy_findings(toy: dict) -> str:
    """Two sentences from the toy numbers at the largest T: which position the first confidence strategy
    commits first and which roles it fills first and last; how left-to-right each strategy is, with the
    exact neutrality of the model-independent orders (random, ancestral)."""
    T = str(max(toy["steps"]))
    sampled = [s for s in toy["strategies"] if s not in toy["exact_strategies"]]
    lead = toy["cells"][sampled[0]][T]
    P, P_se = np.array(lead["P"]), np.array(lead["P_se"])
    i = int(P[:, 0].argmax())
    roles = {r: v for r, v in lead["roles"].items() if r != "other" and v["mean_step_se"]}
    early = min(roles, key=lambda r: roles[r]["mean_step"])
    late = max(roles, key=lambda r: roles[r]["mean_step"])
    taus = [(s, toy["cells"][s][T]["tau"]) for s in sampled]
    leans = {_lean(t["mean"], t["se"]) for _, t in taus}
    text = (f"With {sampled[0]} at T = {T}, position {i + 1} is committed first in {_pct(P[i, 0], P_se[i, 0])} of "
            f"the toy sentences; by grammatical role, {early} comes first (mean step "
            f"{format_mean(roles[early]['mean_step'], roles[early]['mean_step_se'])}) and {late} last "
            f"({format_mean(roles[late]['mean_step'], roles[late]['mean_step_se'])}). "
            f"Kendall's τ between commit step and position (+1 = left to right): "
            + ", ".join(f"{s} {format_mean(t['mean'], t['se'], signed=True)}" for s, t in taus)
            + (f" (all {leans.pop()})" if len(leans) == 1 and None not in leans else ""))
    exact = [(s, toy["cells"][s][T]["tau_exact"]) for s in toy["exact_strategies"]]
    neutral = [s for s, e in exact if e is not None and abs(e["mean"]) < 1e-12]
    if neutral:
        text += f"; {' and '.join(neutral)} order {'is' if len(neutral) == 1 else 'are'} left-to-right-neutral " \
                f"(τ = 0 exactly, from the exact distribution)"
    return text + "."


def real_findings(real: dict) -> str:
    """One or two sentences from the real-model numbers: which word class each strategy commits earliest
    and latest, and whether random order favours any class (beyond 3 standard errors)."""
    parts, blind = [], None
    for strategy, r in real["strategies"].items():
        cls = {c: v for c, v in r["by_class"].items() if v["generations"] >= MIN_GENERATIONS and v["se"]}
        if not cls:
            parts.append(f"{strategy}: too few tokens of any class to compare")
            continue
        early = min(cls, key=lambda c: cls[c]["mean_rel_step"])
        late = max(cls, key=lambda c: cls[c]["mean_rel_step"])
        z = max(abs(v["mean_rel_step"] - 0.5) / v["se"] for v in cls.values())
        lean = _lean(r["tau"]["mean"], r["tau"]["se"])
        parts.append(f"{strategy} commits {CLASS_WORDS.get(early, early)} earliest (mean relative step "
                     f"{format_mean(cls[early]['mean_rel_step'], cls[early]['se'])}) and {CLASS_WORDS.get(late, late)} "
                     f"latest ({format_mean(cls[late]['mean_rel_step'], cls[late]['se'])}), τ = "
                     f"{format_mean(r['tau']['mean'], r['tau']['se'], signed=True)}"
                     + (f" ({lean})" if lean else " (no left-to-right tendency)"))
        if strategy == "random" and z > 3:
            blind = z
    n = next(iter(real["strategies"].values()))["n"]
    text = (f"On the {real['model']} model ({n} generations of {real['gen_length']} tokens in {real['steps']} "
            f"steps per strategy), " + "; ".join(parts) + ".")
    if blind is not None:
        text += (" Random order picks positions blindly, so its class differences (up to "
                 f"{blind:.0f} SE from the middle, 0.5) come from what the model writes with little context, not "
                 "from which positions it picks.")
    return text


def summary_text(results: dict) -> str:
    """A short human summary of the results (the CLI without --json)."""
    toy = results["toy"]
    lines = [f"Unmasking-order study ({results['command']}; {results['wall_time_s']:.0f} s)",
             "toy model, Kendall's τ between commit step and position (mean ± SE; exact where marked):"]
    for T in toy["steps"]:
        cells = [toy["cells"][s][str(T)] for s in toy["strategies"]]
        row = [f"{c['strategy']} " + (_exact(c["tau_exact"]["mean"]) if c["tau_exact"] else
                                      format_mean(c["tau"]["mean"], c["tau"]["se"], signed=True)) for c in cells]
        lines.append(f"  T = {T}: " + " | ".join(row))
    real = results.get("real")
    if real:
        lines.append(f"real model ({real['model']}), mean relative commit step by word class (0 = first step):")
        for strategy, r in real["strategies"].items():
            row = [f"{c} {v['mean_rel_step']:.2f}" for c, v in r["by_class"].items() if v["mean_rel_step"] is not None]
            lines.append(f"  {strategy}: " + " | ".join(row))
    lines += ["findings:"] + [f"  - {f}" for f in results["findings"]]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- compute


def compute(settings: OrderStudySettings | None = None, progress: Callable | None = None, toy_model=None,
            lm=None) -> dict:
    """The whole study as one JSON-able dict. `progress(fraction, text)` reports along the way."""
    st = settings or OrderStudySettings()
    t0 = time.perf_counter()
    toy_share = 0.15 if st.real else 1.0

    def toy_progress(f, text):
        if progress is not None:
            progress(toy_share * f, text)

    def real_progress(f, text):
        if progress is not None:
            progress(toy_share + (1 - toy_share) * f, text)

    toy = toy_study(st, toy_model, toy_progress)
    real = real_study(st, lm, real_progress) if st.real else None
    findings = [toy_findings(toy)] + ([real_findings(real)] if real else [])
    return {
        "what": "Unmasking-order study: which positions, roles and word classes masked diffusion commits first",
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "command": st.command,
        "settings": asdict(st),
        "seeds": "toy (strategy, T): seed + 1000 T + the strategy's index in STRATEGIES; real: the chunk of "
                 "generations starting at j runs with seed + j (the same prompts and seeds for every strategy)",
        "tau": "Kendall's tau-b between commit step and position per sequence (ties = committed at the same step); "
               "undefined (left out, counted) when all positions are committed at one step",
        "toy": toy,
        "real": real,
        "findings": findings,
    }


class ResultsError(ValueError):
    """The results file is missing or not an order-study result; the message names the file."""


def load_results(path: str | Path = RESULTS) -> dict:
    """The shipped (or any) results file, checked: a ResultsError with a clear message otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ResultsError(f"there is no results file at {p}")
    try:
        d = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{p} cannot be read as JSON ({e})") from e
    need = {"toy", "real", "findings", "settings", "command", "computed_at", "wall_time_s"}
    if not isinstance(d, dict) or not need <= set(d) or not _complete(d):
        raise ResultsError(f"{p} is not a complete order-study result (python -m dlm_core order-study writes one)")
    return d


def _complete(d: dict) -> bool:
    """Whether a results dict has every part the page draws."""
    toy, real = d["toy"], d["real"]
    try:
        cells_ok = all({"P", "P_se", "T", "roles", "tau", "tau_exact", "strategy"} <= set(toy["cells"][s][str(T)])
                       for s in toy["strategies"] for T in toy["steps"])
        real_ok = real is None or all({"by_class", "by_frequency", "by_position", "tau", "n"} <= set(r)
                                      for r in real["strategies"].values())
        return cells_ok and real_ok and {"roles", "tau_edges"} <= set(toy) and isinstance(d["findings"], list)
    except (KeyError, TypeError, AttributeError):
        return False
