"""The unmasking-order study on a real masked LM (order_study.py runs it): the commit step of each generated
token by relative position, by word class (punctuation, function word, content word, subword
continuation) and by frequency rank, for low-confidence against random order, over held-out prompts.
"""

from __future__ import annotations

import json
import string
from collections import Counter
from collections.abc import Callable

import numpy as np

from dlm_core.studies.order_measures import (
    CLASSES,
    FREQUENCY_BUCKETS,
    FUNCTION_WORDS,
    OrderStudySettings,
    clustered_share,
    commit_steps,
    kendall_tau_b,
    tau_edges,
    tau_summary,
)

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

    from dlm_core.variants.hf_adapter import EMBEDDED

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

    from dlm_core.sampling.masked_sampler import MaskedSampler, MaskedSamplerConfig

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
    from dlm_core.variants import hf_adapter

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


