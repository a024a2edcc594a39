"""Gaussian (continuous embedding) diffusion: the bound, the forward process, the sampler and
the shipped checkpoint. Maths: docs/maths.md section 3."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from oracles import OracleDenoiser
from torch import nn

from dlm_core import toy_language
from dlm_core.studies import training
from dlm_core.trajectory import Trajectory
from dlm_core.variants import gaussian, gaussian_bound
from dlm_core.variants.evaluate import EvalSettings

ROOT = Path(__file__).resolve().parent.parent
H = toy_language.entropy_bits_per_unit()

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def shipped():
    model, meta = training.load_checkpoint(training.default_checkpoint("gaussian"))
    return model, meta


def small_model():
    return gaussian.VARIANT.build_model(training.default_config("gaussian", d_model=32, d_ff=64)).eval()


class IndependentPositions(nn.Module):
    """Exact posterior if the six positions were independent (true marginals, no context):
    logits = log p(x^i = v) + (alpha / sigma^2) z_i . E[v]. Must NOT reach H."""

    def __init__(self, embedding, gamma0, gamma1):
        super().__init__()
        self.register_buffer("embedding", embedding)
        self.register_buffer("gamma_range", torch.tensor([gamma0, gamma1]))
        sa = toy_language.support_arrays()
        marg = np.einsum("n,nlv->lv", sa.p, np.eye(toy_language.V)[sa.x])
        self.log_marg = torch.log(torch.as_tensor(marg).clamp_min(1e-300))

    gamma0 = gaussian.GaussianDenoiser.gamma0
    gamma1 = gaussian.GaussianDenoiser.gamma1
    gamma = gaussian.GaussianDenoiser.gamma

    def forward(self, z, t):
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(z.shape[0])
        a, s = gaussian.alpha_sigma(self.gamma(t))
        gauss = (a / s**2)[:, None, None] * z.double() @ self.embedding.double().T
        return self.log_marg[None] + gauss


# ------------------------------------------------------------------ 1. the bound


def test_oracle_bound_matches_entropy():
    e = gaussian.embedding_table()
    oracle = OracleDenoiser(e)
    r = gaussian_bound.nelbo_terms(oracle, n_t=600, generator=torch.Generator().manual_seed(1), chunk=4096)
    se = r["stderr"]
    assert 0 < se < 0.01 * H  # a real check: the error bar is small against H
    # E[bound] = H + KL(q(z_1) || N(0, I)), and that KL is at most the prior term
    assert r["nelbo"] >= H - 3 * se, (r, H)
    assert r["nelbo"] <= H + r["prior"] + 3 * se, (r, H)
    assert r["reconstruction"] < 1e-6  # at gamma0 the exact posterior is certain


def test_bound_sees_missing_context():
    """The same estimator on a denoiser that ignores the other positions is far above H."""
    e = gaussian.embedding_table()
    indep = IndependentPositions(e, gaussian.GAMMA0, gaussian.GAMMA1)
    r = gaussian_bound.nelbo_terms(indep, n_t=200, generator=torch.Generator().manual_seed(2), chunk=4096)
    assert r["nelbo"] > H + 10 * r["stderr"]
    assert r["nelbo"] > 1.1 * H


def test_prior_term_matches_closed_form():
    e = gaussian.embedding_table().double()
    a1, s1 = gaussian.alpha_sigma(gaussian.GAMMA1)
    d = e.shape[1]
    # KL(N(a m, s^2 I) || N(0, I)) per position, m of unit norm
    kl_pos = 0.5 * (a1**2 + d * (s1**2 - 1 - math.log(s1**2)))
    r = gaussian_bound.nelbo_terms(OracleDenoiser(e.float()), n_t=2, n_rec=2)
    assert r["prior"] == pytest.approx(toy_language.L * kl_pos / gaussian_bound.BITS, rel=1e-6)


# -------------------------------------------------------------- 2. forward process


def test_alpha_sigma_variance_preserving():
    g = np.linspace(-10, 10, 41)
    a, s = gaussian.alpha_sigma(g)
    np.testing.assert_allclose(a**2 + s**2, 1.0, atol=1e-12)
    np.testing.assert_allclose(np.log(s**2 / a**2), g, atol=1e-9)  # gamma = log sigma^2 / alpha^2
    at, st = gaussian.alpha_sigma(torch.as_tensor(g))
    np.testing.assert_allclose((at**2 + st**2).numpy(), 1.0, atol=1e-12)


def test_forward_moments():
    model = small_model()
    e = model.embedding.double()
    assert torch.allclose(e.norm(dim=-1), torch.ones(toy_language.V, dtype=torch.float64), atol=1e-6)
    x = torch.as_tensor(toy_language.encode("our dog s are your s"))
    n = 20000
    gen = torch.Generator().manual_seed(0)
    for t in (0.2, 0.5, 0.8):
        z = gaussian.corrupt(model, x.expand(n, -1), torch.full((n,), t), gen).double()
        a, s = gaussian.alpha_sigma(gaussian.gamma_of(t, model.gamma0, model.gamma1))
        mean_err = (z.mean(0) - a * e[x]).abs().max().item()
        assert mean_err < 6 * s / math.sqrt(n)  # max over 96 coordinates of a N(0, s^2 / n) error
        var = z.var(0)
        assert (var / s**2 - 1).abs().max().item() < 0.06


def test_forward_sample_nearest():
    model = small_model()
    x = toy_language.encode("your cat is our friend")
    clean = gaussian.forward_sample(model, x, 0.0, seed=0)
    assert clean["nearest"] == list(x)  # sigma / alpha = 0.05 at gamma0: nothing is confused
    noisy = gaussian.forward_sample(model, x, 1.0, seed=0)
    assert noisy["z"].shape == (toy_language.L, gaussian.D_EMB) and noisy["z_2d"].shape == (toy_language.L, 2)
    table, p = gaussian.projection_2d(model)
    np.testing.assert_allclose(noisy["z_2d"], noisy["z"] @ p, atol=1e-9)
    np.testing.assert_allclose(table, gaussian.embeddings(model) @ p, atol=1e-9)
    assert noisy["alpha"] ** 2 + noisy["sigma"] ** 2 == pytest.approx(1.0)


# -------------------------------------------------------------------- 3. sampler


@pytest.mark.parametrize("clamp", [False, True])
def test_sampler_records(shipped, clamp):
    model, _ = shipped
    steps = 10
    traj = gaussian.VARIANT.trajectory(model, steps, seed=5, clamp=clamp)
    assert traj.variant == "gaussian" and traj.mask_id is None and traj.n_steps == steps
    prev = traj.initial
    for k, r in enumerate(traj.records, start=1):
        assert r.step == k and r.t > r.s
        assert r.changed == [i for i in range(toy_language.L) if r.tokens[i] != prev[i]]
        assert r.tokens == [ids[0] for ids in r.topk_ids]  # tokens are the argmax units
        assert all(abs(sum(row) - 1) < 1e-4 for row in r.topk_probs)
        assert len(r.state) == toy_language.L and len(r.state[0]) == gaussian.D_EMB
        assert len(r.nearest) == toy_language.L
        prev = r.tokens
    assert traj.records[-1].s == 0.0
    again = gaussian.VARIANT.trajectory(model, steps, seed=5, clamp=clamp)
    assert again.to_json() == traj.to_json()
    other = gaussian.VARIANT.trajectory(model, steps, seed=6, clamp=clamp)
    assert other.to_json() != traj.to_json()
    back = Trajectory.from_json(traj.to_json())
    assert back == traj and back.final == traj.final
    assert gaussian.VARIANT.sample(model, 1, steps, seed=5, clamp=clamp)[0].tolist() == traj.final


def test_clamp_snaps_x_hat(shipped):
    model, _ = shipped
    e = model.embedding.double()
    s = gaussian.GaussianSampler(model, gaussian.GaussianSamplerConfig(steps=4, seed=0, clamp=True), batch=8)
    while not s.done:
        x_hat = s.step().x_hat
        d = torch.cdist(x_hat.reshape(-1, e.shape[1]), e).min(-1).values
        assert d.max().item() < 1e-6  # every x_hat is a row of E


def test_sample_ids_batch(shipped):
    model, _ = shipped
    x = gaussian.VARIANT.sample(model, 64, 6, seed=1)
    assert x.shape == (64, toy_language.L) and x.dtype == torch.long
    assert int(x.min()) >= 0 and int(x.max()) < toy_language.V
    assert torch.equal(x, gaussian.VARIANT.sample(model, 64, 6, seed=1))


# ------------------------------------------------------------ 4. shipped checkpoint


def test_checkpoint_carries_table_and_schedule(shipped):
    model, meta = shipped
    assert meta["variant"] == "gaussian"
    assert torch.equal(model.embedding, gaussian.embedding_table())
    assert (model.gamma0, model.gamma1) == (gaussian.GAMMA0, gaussian.GAMMA1)


def test_checkpoint_bound(shipped):
    model, _ = shipped
    nelbo, se = gaussian.VARIANT.nelbo(model, EvalSettings(n_t=200, seed=3))
    assert se < 0.02 * H
    assert nelbo <= 1.02 * H + 3 * se, (nelbo, se, H)  # its training target
    assert nelbo >= H - 3 * se, (nelbo, se, H)


def test_checkpoint_cli_samples_valid():
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "dlm_core", "sample", "--variant", "gaussian"]
    cmd += ["--n", "2000", "--steps", "24", "--strategy", "ancestral"]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2000
    m = toy_language.sample_metrics([toy_language.encode(line) for line in lines])
    assert m.validity >= 0.85, m.as_dict()
