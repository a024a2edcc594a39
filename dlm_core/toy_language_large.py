"""The larger toy language of docs/toy-language-large.md: 16 units, sentences of up to 12 (padded to 12).

The 13-unit language's clauses (SUBJECT VERB PREDICATE, with number agreement and plural s), two more
pronouns (he, she: singular), and an optional second clause after "and" when it fits in the 12 units:
46,953 sentences in the first language's units alone, 61,809 with he / she. It exists for the studies that
need more sentences than 216 (the data-constrained study, dlm_core/studies/data_study.py); every other
page keeps the 13-unit language (toy_language.py).

Everything is computed from the generative process of the spec, twice and independently: `support()`
enumerates every sentence with its exact `Fraction` probability, and `grammar_entropy_bits()` /
`grammar_support_size()` run a dynamic programme over the grammar's choices (the chain rule of entropy,
which equals the sentence entropy because every sentence has exactly one derivation) without listing a
sentence. tests/test_toy_language_large.py checks that the two agree.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import cache, lru_cache
from itertools import product

from dlm_core.toy_language import SupportArrays, arrays_of, encode_units

UNITS = ("we", "you", "they", "he", "she", "our", "your", "their", "cat", "dog", "friend", "is", "are", "s", "and",
         "[PAD]")
V = len(UNITS)  # 16 real units, [PAD] included
L = 12  # every sentence is padded to 12 units
MASK_ID = V  # the absorbing state of a masked model (16); also the autoregressive start symbol
MASK = "[MASK]"
ID = {u: i for i, u in enumerate(UNITS)}
PAD_ID = ID["[PAD]"]

PRONOUNS = {"we": "pl", "you": "you", "they": "pl", "he": "sg", "she": "sg"}  # the number each takes
POSSESSIVES = ("our", "your", "their")
NOUNS = ("cat", "dog", "friend")
VERB = {"sg": "is", "pl": "are", "you": "are"}
P_SECOND = Fraction(1, 2)  # the probability of "and" + a second clause, when one fits
SHORTEST_PREDICATE = 2  # POSS s
SHORTEST_CLAUSE = 1 + 1 + SHORTEST_PREDICATE  # PRON VERB POSS s

# the forms of the grammar: (name, length, numbers it takes or gives, its fills)
SUBJECT_FORMS = (  # (form, length, fills: list of (units, number))
    ("PRON", 1, [((w,), n) for w, n in PRONOUNS.items()]),
    ("POSS N", 2, [((a, n), "sg") for a, n in product(POSSESSIVES, NOUNS)]),
    ("N s", 2, [((n, "s"), "pl") for n in NOUNS]),
    ("POSS N s", 3, [((a, n, "s"), "pl") for a, n in product(POSSESSIVES, NOUNS)]),
)
PREDICATE_FORMS = (  # (form, length, the subject numbers that allow it, fills)
    ("POSS N", 2, ("sg", "you"), [(a, n) for a, n in product(POSSESSIVES, NOUNS)]),
    ("POSS N s", 3, ("pl", "you"), [(a, n, "s") for a, n in product(POSSESSIVES, NOUNS)]),
    ("POSS s", 2, ("sg", "pl", "you"), [(a, "s") for a in POSSESSIVES]),
)


# ------------------------------------------------------------------ the generative process


def subject_forms(room: int):
    """The subject forms that leave room for the verb and the shortest predicate."""
    return [f for f in SUBJECT_FORMS if f[1] + 1 + SHORTEST_PREDICATE <= room]


def predicate_forms(number: str, room: int):
    """The predicate forms allowed for the subject's number that fit in the room left."""
    return [f for f in PREDICATE_FORMS if number in f[2] and f[3] and f[1] <= room]


def clauses(room: int) -> list[tuple[tuple[str, ...], Fraction]]:
    """Every clause that fits in `room` units with its exact probability: a subject form (uniform among those
    that fit), its fill (uniform), the agreeing verb, a predicate form (uniform among those allowed that fit)
    and its fill (uniform)."""
    out = []
    forms = subject_forms(room)
    for _, length, fills in forms:
        for units, number in fills:
            p_subject = Fraction(1, len(forms)) * Fraction(1, len(fills))
            preds = predicate_forms(number, room - length - 1)
            for _, _, _, pred_fills in preds:
                for pred in pred_fills:
                    out.append((units + (VERB[number],) + pred, p_subject * Fraction(1, len(preds) * len(pred_fills))))
    return out


@lru_cache(maxsize=1)
def support() -> dict[tuple[int, ...], Fraction]:
    """Every sentence (a tuple of 12 ids) with its exact probability: a first clause in the 12 units; then, if
    a clause still fits after "and", with probability 1/2 "and" and a second clause in the room left; [PAD]
    to 12."""
    dist: dict[tuple[int, ...], Fraction] = {}

    def add(units, p):
        key = tuple(ID[u] for u in units) + (PAD_ID,) * (L - len(units))
        dist[key] = dist.get(key, Fraction(0)) + p

    for first, p1 in clauses(L):
        room = L - len(first) - 1
        seconds = clauses(room) if room >= SHORTEST_CLAUSE else []
        if not seconds:
            add(first, p1)
            continue
        add(first, p1 * (1 - P_SECOND))
        for second, p2 in seconds:
            add(first + ("and",) + second, p1 * P_SECOND * p2)
    assert sum(dist.values()) == 1
    return dist


@lru_cache(maxsize=1)
def support_arrays() -> SupportArrays:
    """The support as arrays, in a fixed (sorted) order, for vectorised code."""
    return arrays_of(support())


def support_size() -> int:
    return len(support())


def _plogp_bits(p: Fraction) -> float:
    """-p log2 p of an exact fraction, from the logs of its integer numerator and denominator."""
    return float(p) * (math.log2(p.denominator) - math.log2(p.numerator))


def entropy_bits() -> float:
    """H by enumeration: -sum_x p(x) log2 p(x) over the support, bits per sentence."""
    return math.fsum(_plogp_bits(p) for p in support().values())


def entropy_bits_per_unit() -> float:
    return entropy_bits() / L


# ------------------------------------------------------- the same numbers from the grammar alone


def _choice_bits(n: int) -> float:
    """The entropy of a uniform choice among n."""
    return math.log2(n)


@cache
def _clause_stats(room: int) -> tuple[int, float, tuple[tuple[int, Fraction], ...]]:
    """(number of clauses, their entropy in bits, the distribution of their length) for a clause in `room`,
    by the chain rule over the grammar's choices: H = H(subject form) + E[H(fill)] + E[H(predicate form) +
    H(its fill)]. No clause is listed."""
    forms = subject_forms(room)
    count, bits, lengths = 0, _choice_bits(len(forms)), {}
    for _, length, fills in forms:
        p_form = Fraction(1, len(forms))
        bits += float(p_form) * _choice_bits(len(fills))
        for _, number in fills:
            p_fill = p_form / len(fills)
            preds = predicate_forms(number, room - length - 1)
            bits += float(p_fill) * _choice_bits(len(preds))
            for _, plen, _, pred_fills in preds:
                p_pred = p_fill / len(preds)
                bits += float(p_pred) * _choice_bits(len(pred_fills))
                count += len(pred_fills)
                n = length + 1 + plen
                lengths[n] = lengths.get(n, Fraction(0)) + p_pred
    return count, bits, tuple(sorted(lengths.items()))


def _sentence_stats() -> tuple[int, float]:
    _, bits, lengths = _clause_stats(L)
    count = 0
    for n, p_n in lengths:  # what follows a first clause depends only on its length
        room = L - n - 1
        if room < SHORTEST_CLAUSE or not _clause_stats(room)[0]:
            count += _count_of_length(L, n)
            continue
        count2, bits2, _ = _clause_stats(room)
        h_and = -(float(P_SECOND) * math.log2(P_SECOND) + float(1 - P_SECOND) * math.log2(1 - P_SECOND))
        bits += float(p_n) * (h_and + float(P_SECOND) * bits2)
        count += _count_of_length(L, n) * (1 + count2)
    return count, bits


@cache
def _count_of_length(room: int, n: int) -> int:
    """How many clauses in `room` have n units (from the grammar's forms)."""
    total = 0
    forms = subject_forms(room)
    for _, length, fills in forms:
        for _, number in fills:
            for _, plen, _, pred_fills in predicate_forms(number, room - length - 1):
                if length + 1 + plen == n:
                    total += len(pred_fills)
    return total


def grammar_entropy_bits() -> float:
    """H by the dynamic programme over the grammar (bits per sentence): must equal entropy_bits()."""
    return _sentence_stats()[1]


def grammar_support_size() -> int:
    """The number of sentences by the dynamic programme over the grammar: must equal support_size()."""
    return _sentence_stats()[0]


# --------------------------------------------------------------------------------- text


def encode(text: str) -> tuple[int, ...]:
    """'he is our dog and we are your s' -> ids, right-padded with [PAD] to 12 units."""
    return encode_units(text, UNITS, L, MASK_ID)


def decode(ids, strip_pad: bool = False) -> str:
    words = [MASK if int(i) == MASK_ID else UNITS[int(i)] for i in ids]
    while strip_pad and words and words[-1] == "[PAD]":
        words.pop()
    return " ".join(words)


# ------------------------------------------------------------------------------ samples


def validity(samples) -> tuple[float, float, int]:
    """(fraction of samples that are sentences of the language, its standard error, distinct valid ones)."""
    sup = support()
    rows = [tuple(int(i) for i in s) for s in samples]
    if not rows:
        raise ValueError("no samples")
    valid = [r for r in rows if r in sup]
    v = len(valid) / len(rows)
    return v, math.sqrt(v * (1 - v) / len(rows)), len(set(valid))


def stats() -> dict:
    """What `python -m dlm_core language --large` prints: both computations side by side."""
    return {"language": "large (docs/toy-language-large.md)", "units": V, "max_length": L,
            "support_size": support_size(), "support_size_grammar": grammar_support_size(),
            "entropy_bits_per_sentence": entropy_bits(), "entropy_bits_per_sentence_grammar": grammar_entropy_bits(),
            "entropy_bits_per_unit": entropy_bits_per_unit()}
