"""The masked variant's maths against exact values (docs/maths.md section 1)."""

import math

import numpy as np
import pytest
import torch
from conftest import oracle_log_probs

from dlm_core import schedules
from dlm_core import toy_language as T
from dlm_core.sampling.masked_sampler import MaskedSampler, MaskedSamplerConfig
from dlm_core.variants import masked

SA = T.support_arrays()


def test_oracle_nelbo_equals_minus_log_p():
    """With the true conditionals the exact NELBO is -log p(x) for every sentence."""
    nelbo = masked.exact_nelbo(SA.x, oracle_log_probs)
    assert np.max(np.abs(nelbo + np.log(SA.p))) < 1e-9


def test_oracle_random_order_likelihood_is_exact():
    nll = masked.exact_nll(SA.x, oracle_log_probs)
    assert np.max(np.abs(nll + np.log(SA.p))) < 1e-9


def test_nelbo_upper_bounds_nll_for_an_imperfect_model():
    """Jensen: NELBO(x) >= -log p_mix(x) for any model; equality is special to the oracle."""
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(1 << 6, 6, T.V)) * 0.7

    def noisy(z):
        lp = np.log(T.true_conditionals(z) * 0.8 + 0.2 / T.V)
        key = ((z != T.MASK_ID) * (1 << np.arange(6))).sum(-1)  # perturb by revealed set
        lp = lp + noise[key]
        return lp - np.log(np.exp(lp).sum(-1, keepdims=True))

    nelbo = masked.exact_nelbo(SA.x, noisy)
    nll = masked.exact_nll(SA.x, noisy)
    assert np.all(nelbo >= nll - 1e-12)
    assert np.mean(nelbo - nll) > 1e-3


def test_one_step_sampler_is_the_product_of_marginals():
    """T = 1: every position is drawn from its all-masked marginal independently."""
    p1 = masked.ancestral_exact_probs(SA.x, oracle_log_probs, 1)
    marg = T.true_conditionals(np.full((1, 6), T.MASK_ID))[0]
    expected = np.prod(marg[np.arange(6), SA.x], axis=1)
    assert np.allclose(p1, expected, rtol=1e-12, atol=0)


def test_one_unit_per_step_ancestral_equals_random_order():
    """With T = L = 6 linear steps the ancestral DP is not one unit per step, but T -> inf is:
    the many-step limit approaches p_mix (here the true distribution)."""
    p100 = masked.ancestral_exact_probs(SA.x, oracle_log_probs, 100)
    p1000 = masked.ancestral_exact_probs(SA.x, oracle_log_probs, 1000)
    assert p100.sum() < p1000.sum() <= 1.0 + 1e-12
    assert np.abs(p1000 - SA.p).sum() < np.abs(p100 - SA.p).sum()
    assert np.abs(p1000 - SA.p).sum() < 0.01


def test_exact_sampler_distribution_matches_monte_carlo(masked_model):
    """The DP's valid mass for T = 3 agrees with the stepwise sampler within 4 standard errors."""
    lp = masked.log_probs_fn(masked_model)
    exact = masked.ancestral_exact_probs(SA.x, lp, 3).sum()
    x = masked.VARIANT.sample(masked_model, 20000, 3, seed=1, strategy="ancestral")
    v = T.sample_metrics(x.numpy()).validity
    se = math.sqrt(exact * (1 - exact) / 20000)
    assert abs(v - exact) < 4 * se


def test_forward_marginals_follow_the_schedule():
    x0 = torch.as_tensor(SA.x[:1]).repeat(40000, 1)
    g = torch.Generator().manual_seed(0)
    for sched in schedules.SCHEDULES:
        for t in (0.2, 0.5, 0.9):
            z = masked.corrupt(x0, torch.full((40000,), t), g, sched)
            frac_masked = (z == T.MASK_ID).float().mean().item()
            a = schedules.get(sched).alpha(t)
            assert abs(frac_masked - (1 - a)) < 4 * math.sqrt(a * (1 - a) / (40000 * 6))
            assert torch.all((z == x0) | (z == T.MASK_ID))


def test_training_loss_is_an_unbiased_estimate_of_the_exact_nelbo(masked_model):
    nelbo = float(np.sum(SA.p * masked.exact_nelbo(SA.x, masked.log_probs_fn(masked_model))))
    g = torch.Generator().manual_seed(0)
    idx = torch.multinomial(torch.as_tensor(SA.p), 4096 * 25, replacement=True, generator=g)
    x = torch.as_tensor(SA.x)[idx]
    with torch.no_grad():
        vals = [float(masked.loss(masked_model, chunk, "linear", g)) for chunk in x.split(4096)]
    se = np.std(vals, ddof=1) / math.sqrt(len(vals))
    assert abs(np.mean(vals) - nelbo) < 4 * se + 1e-3


def test_schedule_weights():
    t = np.array([0.1, 0.5, 0.9])
    assert np.allclose(schedules.get("linear").loss_weight(t), 1 / t)
    # the cosine weight integrates alpha' correctly: int_0^1 -alpha'_t dt = 1
    grid = np.linspace(0, 1, 20001)
    cosine = schedules.get("cosine")
    assert np.trapezoid(-schedules.get("cosine").alpha_prime(grid), grid) == pytest.approx(1.0, abs=1e-6)
    assert cosine.alpha(0.0) == pytest.approx(1.0) and cosine.alpha(1.0) == pytest.approx(0)


def test_sampler_never_outputs_mask_and_reveals_monotonically(masked_model):
    lm = masked.ToyMaskedLM(masked_model)
    for strategy in ("ancestral", "random", "low-confidence", "margin", "entropy"):
        s = MaskedSampler(lm, MaskedSamplerConfig(steps=4, strategy=strategy, seed=3, block_length=None),
                          torch.full((64, 6), T.MASK_ID))
        prev = s.x.clone()
        while not s.done:
            out = s.step()
            was = prev != T.MASK_ID
            assert torch.equal(out.x[was], prev[was])  # committed units never change
            assert torch.equal(out.committed, (prev == T.MASK_ID) & (out.x != T.MASK_ID))
            prev = out.x.clone()
        assert not (s.x == T.MASK_ID).any()
    x = masked.VARIANT.sample(masked_model, 3, 2, strategy="low-confidence", temperature=0.0)
    assert (x < T.V).all()
