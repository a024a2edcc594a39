"""Classifier-free guidance on the toy language, exactly (dlm_core.studies.guidance, docs/maths.md section 12):
the tilted target from the exact language, the guided sampler's own distribution by dynamic programming, and
samples of the sampler against it."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from oracles import chi2_pvalue

from dlm_core.studies import guidance, training
from dlm_core.studies.infill import language_conditional
from dlm_core.toy_language import ID, L, support

PROMPT = {0: ID["you"]}


@pytest.fixture(scope="module")
def results():
    torch.set_num_threads(1)
    model = training.load_checkpoint(training.default_checkpoint("masked"))[0]
    return guidance.study(model, guidance.GuidanceSettings(n=2000, seed=3))


def test_the_target_at_w_0_is_the_exact_conditional_and_tilts_by_the_formula():
    assert guidance.tilted_target(PROMPT, 0.0) == pytest.approx(language_conditional(PROMPT), abs=1e-12)
    w = 2.0
    target = guidance.tilted_target(PROMPT, w)
    cond = language_conditional(PROMPT)
    rest = {}  # p(r): the rest's marginal, by a second, direct sum
    for x, p in support().items():
        rest[x[1:]] = rest.get(x[1:], Fraction(0)) + p
    weights = {x: cond[x] ** (1 + w) * float(rest[x[1:]]) ** (-w) for x in cond}
    z = sum(weights.values())
    assert target == pytest.approx({x: v / z for x, v in weights.items()}, abs=1e-12)
    # the tilt favours the completions the prompt makes likely relative to their marginal
    ratio = {x: cond[x] / float(rest[x[1:]]) for x in cond}
    best = max(ratio, key=ratio.get)
    assert target[best] / cond[best] == max(target[x] / cond[x] for x in cond) > 1


def test_a_perfect_models_guided_sampler_is_the_target_only_at_w_0(results):
    by_w = results["by_w"]
    assert by_w["0"]["tv_perfect_sampler_target"] < 1e-12
    for w in ("1", "2", "4"):  # per-step tilts do not multiply up to the sentence's tilt
        assert by_w[w]["tv_perfect_sampler_target"] > 0.01
        assert by_w[w]["valid"]["perfect_sampler"] == pytest.approx(1.0, abs=1e-9)  # impossible stays impossible


@pytest.mark.parametrize("w", ["0", "1", "2", "4"])
def test_the_sampled_distribution_matches_the_samplers_exact_one(results, w):
    """Four guidance scales: the guided sampler's samples against its exact distribution (chi-square, and every
    sentence's share within 3 standard errors)."""
    cell, n = results["by_w"][w], results["settings"]["n"]
    exact = np.array(cell["model_sampler"])
    counts = np.round(np.array(cell["sampled"]) * n)
    expected = np.append(exact, max(0.0, 1 - exact.sum())) * n
    observed = np.append(counts, n - counts.sum())
    assert chi2_pvalue(observed, expected) > 1e-3
    se = np.sqrt(exact * (1 - exact) / n)
    assert np.all(np.abs(np.array(cell["sampled"]) - exact) <= 3 * se + 1.5 / n)


def test_the_summary_follows_the_numbers(results):
    text = guidance.summary(results)
    strong = list(results["by_w"].values())[-1]
    assert f"{strong['tv_perfect_sampler_target']:.3f}" in text and f"w = {strong['w']:g}" in text
    assert len(results["completions"]) == len(language_conditional(PROMPT)) and all(
        len(c.split()) == L for c in results["completions"])
