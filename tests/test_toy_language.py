"""The toy language against its specification (docs/toy-language.md)."""

import math
from fractions import Fraction

import numpy as np
import pytest

from dlm_core import toy_language as T


def test_support_is_a_distribution_of_six_unit_sentences():
    sup = T.support()
    assert sum(sup.values()) == Fraction(1)
    assert all(len(x) == 6 and p > 0 for x, p in sup.items())
    for x in sup:  # [PAD] only as a suffix, [MASK] never
        assert T.MASK_ID not in x
        first = x.index(T.PAD_ID) if T.PAD_ID in x else 6
        assert all(u == T.PAD_ID for u in x[first:])


def test_probabilities_follow_the_generative_process():
    # 'we are our s': PRON (1/4) * we (1/3) * {POSS N s, POSS s} (1/2) * our (1/3)
    assert T.support()[T.encode("we are our s")] == Fraction(1, 4) * Fraction(1, 3) * Fraction(1, 2) * Fraction(1, 3)
    # 'you are ...': you may take all three predicate forms
    assert T.support()[T.encode("you are our cat")] == Fraction(1, 4 * 3 * 3 * 9)
    # a POSS N s subject leaves room for POSS s only
    assert T.support()[T.encode("our dog s are your s")] == Fraction(1, 4 * 9 * 3)


def test_entropy_is_computed_from_the_support():
    sup = T.support()
    h = -sum(float(p) * math.log2(float(p)) for p in sup.values())
    assert T.entropy_bits() == pytest.approx(h, abs=1e-12)
    assert T.entropy_bits_per_unit() == pytest.approx(h / 6)
    assert 0 < T.entropy_bits() < math.log2(len(sup))  # not uniform over the support
    assert T.support_size() == len(sup)


def test_article_examples_and_agreement_error():
    for s in T.EXAMPLES:
        assert T.validity_reason(T.encode(s)) == "valid", s
    assert T.validity_reason(T.encode("our dog are your s")) == "agreement"


@pytest.mark.parametrize(
    "text, reason",
    [
        ("our [PAD] dog is your s", "padding"),
        ("dog s is our friend s", "agreement"),
        ("dog s are our friend [PAD]", "predicate_number"),
        ("our dog is your friend s", "predicate_number"),
        ("is is is is is is", "other"),
    ],
)
def test_validity_reasons(text, reason):
    assert T.validity_reason(T.encode(text)) == reason


def test_encode_decode_and_errors():
    ids = T.encode("your cat is our friend")
    assert T.decode(ids) == "your cat is our friend [PAD]"
    with pytest.raises(ValueError, match="unknown unit"):
        T.encode("a cat is ours")
    with pytest.raises(ValueError, match="at most 6"):
        T.encode("we are our s s s s")


def test_sample_metrics_on_exact_and_broken_samples():
    sa = T.support_arrays()
    rng = np.random.default_rng(0)
    n = 20000
    rows = sa.x[rng.choice(len(sa.p), size=n, p=sa.p)]
    m = T.sample_metrics(rows)
    assert m.validity == 1.0 and m.reasons["valid"] == n
    assert m.coverage == T.support_size()
    # plug-in KL of exact samples is small: about (support - 1) / (2 n ln 2) bits
    assert m.kl_valid_bits < 3 * (T.support_size() - 1) / (2 * n * math.log(2))
    broken = [T.encode("our dog are your s")] * 10 + [T.encode("we are our s")] * 10
    mb = T.sample_metrics(broken)
    assert mb.validity == 0.5 and mb.reasons["agreement"] == 10 and mb.coverage == 1
    p_we = float(T.support()[T.encode("we are our s")])
    assert mb.tv == pytest.approx(0.5 * (abs(0.5 - p_we) + (1 - p_we)) + 0.25)


def test_true_conditionals_are_the_exact_posteriors():
    z = np.array([T.encode("[MASK] [MASK] are your s")])
    post = T.true_conditionals(z)[0]
    assert np.allclose(post.sum(-1), 1.0)
    sup = T.support()
    # brute force: P(x^0 = v | x^2.. observed)
    num = {}
    for x, p in sup.items():
        if x[2:] == z[0, 2:].tolist() or tuple(x[2:]) == tuple(z[0, 2:]):
            num[x[0]] = num.get(x[0], 0) + float(p)
    tot = sum(num.values())
    for v in range(T.V):
        assert post[0, v] == pytest.approx(num.get(v, 0) / tot)
