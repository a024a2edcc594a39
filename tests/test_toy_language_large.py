"""The larger toy language (dlm_core/toy_language_large.py, docs/toy-language-large.md): its support and exact
entropy, each computed twice, independently (enumeration of the sentences with exact fractions, and a dynamic
programme over the grammar's choices), and the CLI that prints them."""

import json
import math
from fractions import Fraction

from conftest import run_cli

from dlm_core import toy_language as small
from dlm_core import toy_language_large as G


def test_the_size_of_the_language_is_within_the_brief():
    sup = G.support()
    assert len(sup) >= 10**4 and G.V <= 40 and G.L <= 12
    assert sum(sup.values()) == 1 and all(isinstance(p, Fraction) and p > 0 for p in sup.values())
    assert all(len(x) == G.L for x in sup)
    # [PAD] only as a suffix; "and" at most once, between two clauses
    for x in sup:
        words = G.decode(x, strip_pad=True).split()
        assert "[PAD]" not in words and words.count("and") <= 1


def test_enumeration_and_the_grammar_agree():
    assert G.grammar_support_size() == G.support_size() == 61809
    assert abs(G.grammar_entropy_bits() - G.entropy_bits()) < 1e-9
    assert G.entropy_bits_per_unit() == G.entropy_bits() / G.L
    # each sentence has exactly one derivation (so the chain rule over the grammar is the sentence entropy):
    # the clauses of each room are distinct, and a sentence splits at its one "and"
    for room in range(G.SHORTEST_CLAUSE, G.L + 1):
        units = [c for c, _ in G.clauses(room)]
        assert len(units) == len(set(units))


def test_probabilities_by_hand():
    # he is our dog: PRON (1/4), he (1/5); singular predicates POSS N / POSS s (1/2), our dog (1/9); then no
    # second clause (1/2)
    assert G.support()[G.encode("he is our dog")] == Fraction(1, 4 * 5 * 2 * 9 * 2)
    # we are your s (1/4 1/5 1/2 1/3), "and" (1/2), he is their cat in the 7 units left (1/4 1/5 1/2 1/9)
    assert G.support()[G.encode("we are your s and he is their cat")] == Fraction(1, 120) * Fraction(1, 2) * \
        Fraction(1, 360)
    # a 7-unit first clause leaves 4 units: only a pronoun fits, and a plural one only POSS s
    p1 = Fraction(1, 4 * 9) * Fraction(1, 2 * 9)
    assert G.support()[G.encode("our dog s are your cat s and they are our s")] == p1 / 2 * Fraction(1, 5 * 3)
    assert G.encode("our dog are your s") not in G.support()  # the agreement error of the article


def test_the_first_language_s_clauses_are_in_it():
    """In the spirit of the first: its sentences (without he / she, padded to 12) are sentences of this one."""
    for x in small.support():
        text = small.decode(x).replace(" [PAD]", "")
        assert G.encode(text) in G.support()


def test_text_and_validity():
    assert G.decode(G.encode("she is your s"), strip_pad=True) == "she is your s"
    v, se, distinct = G.validity([G.encode("she is your s"), G.encode("she are your s"), G.encode("she is your s")])
    assert v == 2 / 3 and se == math.sqrt(v * (1 - v) / 3) and distinct == 1


def test_the_cli_prints_support_size_and_entropy():
    out = json.loads(run_cli("language", "--large", "--json").stdout)
    assert out["support_size"] == out["support_size_grammar"] == G.support_size()
    assert out["entropy_bits_per_sentence"] == G.entropy_bits()
    assert abs(out["entropy_bits_per_sentence_grammar"] - out["entropy_bits_per_sentence"]) < 1e-9
    toy = json.loads(run_cli("language", "--json").stdout)  # the 13-unit language stays the default
    assert toy["support_size"] == 216 and toy["entropy_bits_per_sentence"] == small.entropy_bits()
