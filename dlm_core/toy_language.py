"""The toy language of docs/toy-language.md: 13 units, sentences of exactly 6.

Everything here is computed from the generative process of the spec (support,
exact probabilities, entropy); nothing is typed in. Probabilities are exact
`Fraction`s; float copies are provided for the numerical code.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from itertools import product

import numpy as np

UNITS = ("we", "you", "they", "our", "your", "their", "cat", "dog", "friend", "is", "are", "s", "[PAD]")
V = len(UNITS)  # 13 real units, [PAD] included
L = 6  # every sentence has exactly 6 units
MASK_ID = 13  # the absorbing state of the masked variant; never a unit of the language
MASK = "[MASK]"
ID = {u: i for i, u in enumerate(UNITS)}
PAD_ID = ID["[PAD]"]

PRONOUNS = ("we", "you", "they")
POSSESSIVES = ("our", "your", "their")
NOUNS = ("cat", "dog", "friend")
NOUN_IDS = frozenset(ID[n] for n in NOUNS)
REASONS = ("valid", "padding", "agreement", "predicate_number", "other")

EXAMPLES = ("dog s are our friend s", "our dog s are your s", "your cat is our friend [PAD]")


def _uniform(options):
    """Each option with equal exact probability."""
    p = Fraction(1, len(options))
    return [(o, p) for o in options]


def _subjects():
    """(units, number, probability) for every subject, number in {sg, pl, you}."""
    quarter = Fraction(1, 4)
    out = []
    for (pron,), p in _uniform([(w,) for w in PRONOUNS]):
        out.append(((pron,), "you" if pron == "you" else "pl", quarter * p))
    for (poss, noun), p in _uniform(list(product(POSSESSIVES, NOUNS))):
        out.append(((poss, noun), "sg", quarter * p))
    for (noun,), p in _uniform([(n,) for n in NOUNS]):
        out.append(((noun, "s"), "pl", quarter * p))
    for (poss, noun), p in _uniform(list(product(POSSESSIVES, NOUNS))):
        out.append(((poss, noun, "s"), "pl", quarter * p))
    return out


def _predicates(number: str, room: int):
    """(units, probability) of the predicate given the subject's number and the room left."""
    forms = []
    if number in ("sg", "you") and room >= 2:
        forms.append([(poss, noun) for poss, noun in product(POSSESSIVES, NOUNS)])
    if number in ("pl", "you") and room >= 3:
        forms.append([(poss, noun, "s") for poss, noun in product(POSSESSIVES, NOUNS)])
    if room >= 2:
        forms.append([(poss, "s") for poss in POSSESSIVES])
    out = []
    for fills, p_form in _uniform([tuple(f) for f in forms]):
        for units, p_fill in _uniform(list(fills)):
            out.append((units, p_form * p_fill))
    return out


@lru_cache(maxsize=1)
def support() -> dict[tuple[int, ...], Fraction]:
    """Every sentence of the language (as a tuple of 6 ids) with its exact probability."""
    dist: dict[tuple[int, ...], Fraction] = {}
    for subj, number, p_subj in _subjects():
        verb = "is" if number == "sg" else "are"
        room = L - len(subj) - 1
        for pred, p_pred in _predicates(number, room):
            units = subj + (verb,) + pred
            units = units + ("[PAD]",) * (L - len(units))
            key = tuple(ID[u] for u in units)
            dist[key] = dist.get(key, Fraction(0)) + p_subj * p_pred
    assert sum(dist.values()) == 1
    return dist


@dataclass(frozen=True)
class SupportArrays:
    """The support as arrays, in a fixed (sorted) order, for vectorised code."""

    x: np.ndarray  # (N, L) int64 sentences
    p: np.ndarray  # (N,) float64 probabilities
    index: dict  # sentence tuple -> row


def arrays_of(dist: dict) -> SupportArrays:
    """A distribution over sentences (tuple -> probability) as SupportArrays, sorted by sentence."""
    items = sorted(dist.items())
    x = np.array([k for k, _ in items], dtype=np.int64)
    p = np.array([float(v) for _, v in items], dtype=np.float64)
    return SupportArrays(x=x, p=p, index={k: i for i, (k, _) in enumerate(items)})


@lru_cache(maxsize=1)
def support_arrays() -> SupportArrays:
    return arrays_of(support())


def support_size() -> int:
    return len(support())


def entropy_bits() -> float:
    """Exact entropy H of the language in bits per sentence: -sum p log2 p."""
    return -sum(float(p) * math.log2(float(p)) for p in support().values())


def entropy_bits_per_unit() -> float:
    return entropy_bits() / L


# --------------------------------------------------------------------------- text


def encode(text: str) -> tuple[int, ...]:
    """'our dog s are your s' -> ids, right-padded with [PAD] to 6 units."""
    return encode_units(text, UNITS, L, MASK_ID)


def encode_units(text: str, units: tuple[str, ...], length: int, mask_id: int) -> tuple[int, ...]:
    """Words -> ids in a language of these `units` (one of them [PAD]), [MASK] -> mask_id, padded to `length`."""
    words, ids = text.split(), {u: i for i, u in enumerate(units)}
    unknown = [w for w in words if w not in ids and w != MASK]
    if unknown:
        raise ValueError(f"unknown unit(s) {unknown}; the units are: {' '.join(units)}")
    if len(words) > length:
        raise ValueError(f"a sentence has at most {length} units, got {len(words)}")
    out = [mask_id if w == MASK else ids[w] for w in words]
    return tuple(out + [ids["[PAD]"]] * (length - len(out)))


def unit_name(i: int) -> str:
    return MASK if i == MASK_ID else UNITS[i]


def decode(ids) -> str:
    """Ids -> the 6 units separated by single spaces ([PAD] and [MASK] written as such)."""
    return " ".join(unit_name(int(i)) for i in ids)


# ----------------------------------------------------------------------- validity


def _swap_verb_fixes(x: tuple[int, ...]) -> bool:
    sup = support()
    swap = {ID["is"]: ID["are"], ID["are"]: ID["is"]}
    for i, u in enumerate(x):
        if u in swap and (x[:i] + (swap[u],) + x[i + 1 :]) in sup:
            return True
    return False


def _predicate_number_fixes(x: tuple[int, ...]) -> bool:
    sup = support()
    s_id = ID["s"]
    nouns = [i for i, u in enumerate(x) if u in NOUN_IDS]
    # add a plural s right after the last noun, the trailing [PAD] making room
    if nouns and x[-1] == PAD_ID:
        j = nouns[-1] + 1
        if (x[:j] + (s_id,) + x[j:-1]) in sup:
            return True
    # remove the final s when it follows a noun
    s_pos = [i for i, u in enumerate(x) if u == s_id]
    if s_pos and s_pos[-1] > 0 and x[s_pos[-1] - 1] in NOUN_IDS:
        j = s_pos[-1]
        if (x[:j] + x[j + 1 :] + (PAD_ID,)) in sup:
            return True
    return False


# Each validity reason in plain words, as the pages say it ("other": none of the three simple fixes repairs it).
REASON_WORDS = {
    "valid": "a sentence of the language",
    "padding": "padding in the middle ([PAD] before a unit)",
    "agreement": "the verb does not agree with the subject (is / are)",
    "predicate_number": "the predicate's number is wrong (a plural s missing or extra)",
    "other": "a tangle: no single fix (moving padding, swapping is / are, a plural s) repairs it",
}


def writes_units(vocab, ids) -> bool:
    """Whether `ids`, written with this vocabulary, are L units of the toy language (what validity_reason
    judges): a run of a toy model, not real text or a shared file of some other vocabulary."""
    return (isinstance(vocab, (list, tuple)) and tuple(vocab[:V]) == UNITS and len(ids) == L
            and all(isinstance(i, int) and 0 <= i < V for i in ids))


def validity_reason(ids) -> str:
    """Exactly one reason, the first that applies: valid, padding, agreement, predicate_number, other."""
    x = tuple(int(i) for i in ids)
    if len(x) != L:
        return "other"
    if x in support():
        return "valid"
    first_pad = x.index(PAD_ID) if PAD_ID in x else L
    if any(u != PAD_ID for u in x[first_pad:]):
        return "padding"
    if _swap_verb_fixes(x):
        return "agreement"
    if _predicate_number_fixes(x):
        return "predicate_number"
    return "other"


# ------------------------------------------------------------------ sample metrics


@dataclass
class SampleMetrics:
    n: int
    validity: float  # fraction of samples in the support
    validity_stderr: float
    reasons: dict  # reason -> count
    coverage: int  # distinct valid sentences produced
    coverage_fraction: float  # coverage / support size
    kl_valid_bits: float  # KL(empirical valid || p), bits per sentence
    tv: float  # total variation between the empirical distribution and p

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def sample_metrics(samples) -> SampleMetrics:
    """Validity, reasons, coverage, KL on valid samples, total variation of a set of samples."""
    rows = [tuple(int(i) for i in s) for s in samples]
    n = len(rows)
    if n == 0:
        raise ValueError("no samples")
    sup = support()
    counts = Counter(rows)
    reasons = Counter()
    for x, c in counts.items():
        reasons[validity_reason(x)] += c
    n_valid = reasons["valid"]
    v = n_valid / n
    kl = 0.0
    if n_valid:
        for x, c in counts.items():
            if x in sup:
                q = c / n_valid
                kl += q * math.log2(q / float(sup[x]))
    # TV = 1/2 sum |q - p| over all sequences; invalid mass counts fully
    tv = 0.5 * sum(abs(counts.get(x, 0) / n - float(p)) for x, p in sup.items())
    tv += 0.5 * (n - n_valid) / n
    return SampleMetrics(
        n=n,
        validity=v,
        validity_stderr=math.sqrt(max(v * (1 - v), 0.0) / n),
        reasons={r: reasons.get(r, 0) for r in REASONS},
        coverage=sum(1 for x in counts if x in sup),
        coverage_fraction=sum(1 for x in counts if x in sup) / len(sup),
        kl_valid_bits=kl,
        tv=tv,
    )


# ------------------------------------------------------------ exact conditionals


def true_conditionals(z: np.ndarray, hidden_id: int = MASK_ID) -> np.ndarray:
    """The oracle denoiser: p(x^i = v | the units of z that are not `hidden_id`).

    z: (B, L) ids, `hidden_id` marking unknown positions. Returns (B, L, V) float64:
    at every position, the exact posterior marginal of the data distribution given the
    observed positions (a one-hot at observed ones). Rows whose observed units are
    inconsistent with every sentence get NaN.
    """
    sa = support_arrays()
    z = np.asarray(z, dtype=np.int64)
    observed = z != hidden_id  # (B, L)
    # consistent[b, n]: sentence n agrees with z[b] on every observed position
    agree = (sa.x[None, :, :] == z[:, None, :]) | ~observed[:, None, :]
    w = agree.all(-1) * sa.p[None, :]  # (B, N)
    total = w.sum(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = w / total
    onehot = np.eye(V)[sa.x]  # (N, L, V)
    return np.einsum("bn,nlv->blv", w, onehot)


# -------------------------------------------------------------- grammatical roles
# The role of each unit in SUBJECT VERB PREDICATE [PAD]* (the generative process above), for the
# unmasking-order study (dlm_core/order_study.py). A form is written with the symbols of the spec:
# PRON (we / you / they), POSS (our / your / their), N (cat / dog / friend) and the unit s.

ROLES = ("pronoun", "possessive", "noun", "plural s", "possessive s", "verb", "[PAD]", "other")
SUBJECT_FORMS = {  # subject form -> the role of each of its units
    ("PRON",): ("pronoun",),
    ("POSS", "N"): ("possessive", "noun"),
    ("N", "s"): ("noun", "plural s"),  # dog s = dogs
    ("POSS", "N", "s"): ("possessive", "noun", "plural s"),
}
PREDICATE_FORMS = {
    ("POSS", "N"): ("possessive", "noun"),
    ("POSS", "N", "s"): ("possessive", "noun", "plural s"),
    ("POSS", "s"): ("possessive", "possessive s"),  # your s = yours
}
_SYMBOL = {**{ID[w]: "PRON" for w in PRONOUNS}, **{ID[w]: "POSS" for w in POSSESSIVES},
           **{ID[w]: "N" for w in NOUNS}, ID["s"]: "s", ID["is"]: "VERB", ID["are"]: "VERB", PAD_ID: "[PAD]"}
_UNIT_ROLE = {"PRON": "pronoun", "POSS": "possessive", "N": "noun", "VERB": "verb", "[PAD]": "[PAD]"}


def _parse(x: tuple[int, ...]) -> tuple[str, ...] | None:
    """The roles of a sentence of the language, read off its subject and predicate forms (None: no parse)."""
    symbols = tuple(_SYMBOL.get(u, "?") for u in x)
    core = symbols
    while core and core[-1] == "[PAD]":  # [PAD] only as a suffix
        core = core[:-1]
    if core.count("VERB") != 1:
        return None
    v = core.index("VERB")
    subject, predicate = core[:v], core[v + 1:]
    if subject not in SUBJECT_FORMS or predicate not in PREDICATE_FORMS:
        return None
    return SUBJECT_FORMS[subject] + ("verb",) + PREDICATE_FORMS[predicate] + ("[PAD]",) * (len(symbols) - len(core))


@lru_cache(maxsize=4096)
def unit_roles(ids) -> tuple[str, ...]:
    """The grammatical role of each unit (one of ROLES).

    A sentence of the language is parsed by the grammar: SUBJECT VERB PREDICATE, padded, with the
    subject and predicate forms of docs/toy-language.md (SUBJECT_FORMS, PREDICATE_FORMS). Any other
    sequence (an invalid sample) is classified unit by unit: by the unit's type, an s by the unit before
    it (after a noun: plural s; after a possessive: possessive s), and "other" for an s anywhere else
    or a [MASK]."""
    x = tuple(int(i) for i in ids)
    if x in support():
        roles = _parse(x)
        assert roles is not None, f"the grammar does not parse {decode(x)}"
        return roles
    out = []
    for i, u in enumerate(x):
        sym = _SYMBOL.get(u)
        if sym == "s":
            before = _SYMBOL.get(x[i - 1]) if i > 0 else None
            out.append({"N": "plural s", "POSS": "possessive s"}.get(before, "other"))
        else:
            out.append(_UNIT_ROLE.get(sym, "other"))
    return tuple(out)
