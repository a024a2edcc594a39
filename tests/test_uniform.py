"""Uniform diffusion (UDLM): the NELBO against an oracle, the forward process, the
posterior, the sampler's records, and the shipped checkpoint. Maths: docs/maths.md section 2."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dlm_core import schedules, toy_language
from dlm_core.studies import training
from dlm_core.trajectory import Trajectory
from dlm_core.variants import uniform
from dlm_core.variants.evaluate import EvalSettings

ROOT = Path(__file__).resolve().parent.parent

# ------------------------------------------------------- a tiny language for the oracle

TINY_V, TINY_L = 4, 3
TINY = {(0, 1, 2): 0.4, (1, 1, 3): 0.25, (2, 0, 0): 0.2, (3, 2, 1): 0.1, (0, 3, 2): 0.05}
TINY_X = np.array(list(TINY), dtype=np.int64)
TINY_P = np.array(list(TINY.values()))
ALL_Z = np.array(list(itertools.product(range(TINY_V), repeat=TINY_L)), dtype=np.int64)  # all 4^3 z_t


def q_forward(z, x, a, n_v):
    """q(z_t = z | x) per position: alpha_t delta_{z, x} + (1 - alpha_t) / V."""
    return a * (z == x) + (1.0 - a) / n_v


def leave_one_out(z: np.ndarray, a: np.ndarray) -> np.ndarray:
    """The oracle x_theta on the tiny language: q(x^i | z_t^{-i}), from uniform.leave_one_out_posterior."""
    return uniform.leave_one_out_posterior(z, a, TINY_X, TINY_P, TINY_V)


def test_leave_one_out_posterior_by_brute_force():
    """q(x^i = v | z^{-i}) = sum_{x: x^i = v} p(x) prod_{j != i} q(z^j | x^j) / normaliser, element by element."""
    rng = np.random.default_rng(1)
    z = ALL_Z[rng.choice(len(ALL_Z), 10)]
    a = rng.uniform(0.0, 0.99, 10)
    got = leave_one_out(z, a)
    for b in range(len(z)):
        for i in range(TINY_L):
            want = np.zeros(TINY_V)
            for x, p in TINY.items():
                want[x[i]] += p * np.prod([q_forward(z[b, j], x[j], a[b], TINY_V) for j in range(TINY_L) if j != i])
            assert np.allclose(got[b, i], want / want.sum(), atol=1e-12)


def quadrature_nelbo(x: np.ndarray, x_theta_fn, n_nodes: int) -> float:
    """int_0^1 sum_{z_t} q(z_t | x) f(x_theta, z_t, x, t) dt, exactly over z_t, Gauss-Legendre over t.

    t = u^3 (dt = 3 u^2 du) smooths the t log t behaviour of the integrand at t = 0.
    """
    u, w = np.polynomial.legendre.leggauss(n_nodes)
    u, w = (u + 1) / 2, w / 2
    t, wt = u**3, w * 3 * u**2
    tt = np.repeat(t, len(ALL_Z))
    z = np.tile(ALL_Z, (n_nodes, 1))
    a = schedules.get("linear").alpha(tt)
    q_z = np.prod(q_forward(z, x[None, :], a[:, None], TINY_V), axis=1)  # q(z_t | x), exact
    f = uniform.nelbo_integrand(
        torch.as_tensor(x_theta_fn(z, a)),
        torch.as_tensor(z),
        torch.as_tensor(np.broadcast_to(x, z.shape).copy()),
        torch.as_tensor(tt),
    ).numpy()
    return float(np.sum(np.repeat(wt, len(ALL_Z)) * q_z * f))


def test_oracle_nelbo_equals_minus_log_p():
    """With the leave-one-out posterior as x_theta the UDLM NELBO is tight: NELBO(x) = -log p(x)."""

    for x, p in zip(TINY_X, TINY_P):
        coarse = quadrature_nelbo(x, leave_one_out, 48)
        fine = quadrature_nelbo(x, leave_one_out, 96)
        assert abs(fine - coarse) < 1e-7 * fine  # the quadrature has converged
        assert fine == pytest.approx(-math.log(p), rel=1e-6)


def test_integrand_is_nonnegative_and_zero_at_the_data():
    """Each term is a sum of s - r - r log(s / r) >= 0; x_theta = onehot(x) gives exactly 0."""
    torch.manual_seed(0)
    x = torch.randint(0, TINY_V, (200, TINY_L))
    t = torch.rand(200, dtype=torch.float64) * 0.98 + 0.01
    z = torch.where(torch.rand(200, TINY_L) < 0.5, x, torch.randint(0, TINY_V, (200, TINY_L)))
    x_theta = torch.distributions.Dirichlet(torch.ones(TINY_V, dtype=torch.float64)).sample((200, TINY_L))
    assert (uniform.nelbo_integrand(x_theta, z, x, t) >= -1e-12).all()
    exact = torch.nn.functional.one_hot(x, TINY_V).double()
    assert torch.allclose(uniform.nelbo_integrand(exact, z, x, t), torch.zeros(200, dtype=torch.float64), atol=1e-9)


def test_belief_is_not_the_tight_x_theta():
    """The model's belief q(x^i | all of z_t) in place of x_theta loosens the bound
    (docs/maths.md section 2, 'Careful')."""

    def belief(z, a):
        pi = leave_one_out(z, a)
        # s = 0 posterior: x_theta(v) (V alpha_t delta_{v, z} + 1 - alpha_t), normalised
        b = pi * (TINY_V * a[:, None, None] * np.eye(TINY_V)[z] + 1.0 - a[:, None, None])
        return b / b.sum(-1, keepdims=True)

    h = -np.sum(TINY_P * np.log(TINY_P))
    nelbo = sum(p * quadrature_nelbo(x, belief, 48) for x, p in zip(TINY_X, TINY_P))
    assert nelbo > h + 0.05


# ----------------------------------------------------------------- forward process


def test_forward_marginals_match_corrupt():
    x = toy_language.encode("our dog s are your s")
    n = 20000
    gen = torch.Generator().manual_seed(0)
    for t in (0.2, 0.6, 0.9):
        z = uniform.corrupt(torch.tensor([x] * n), torch.full((n,), t), gen)
        freq = torch.nn.functional.one_hot(z, toy_language.V).double().mean(0).numpy()
        m = uniform.forward_marginals(x, t)
        assert m.shape == (toy_language.L, toy_language.V)
        assert np.allclose(m.sum(-1), 1.0)
        se = np.sqrt(m * (1 - m) / n)
        assert np.all(np.abs(freq - m) <= 5 * se + 1e-12)
    assert np.allclose(uniform.forward_marginals(x, 1.0), 1.0 / toy_language.V)
    assert np.array_equal(uniform.forward_marginals(x, 0.0), np.eye(toy_language.V)[list(x)])
    clean = torch.tensor([x] * 10)
    assert torch.equal(uniform.corrupt(clean, torch.zeros(10), gen), clean)


# ----------------------------------------------------------------------- posterior


def test_posterior_is_the_bayes_posterior():
    """q(z_s | z_t, x) = q(z_t | z_s) q(z_s | x) / q(z_t | x), by brute force, x one-hot or a distribution."""
    rng = np.random.default_rng(0)
    n_v = toy_language.V
    for _ in range(20):
        t = rng.uniform(0.05, 1.0)
        s = rng.uniform(0.0, t)
        a_t, a_s = schedules.get("linear").alpha(t), schedules.get("linear").alpha(s)
        a_ts = a_t / a_s
        z = int(rng.integers(n_v))
        for x in (np.eye(n_v)[rng.integers(n_v)], rng.dirichlet(np.ones(n_v) * 0.3)):
            q_t_given_s = a_ts * (np.arange(n_v) == z) + (1 - a_ts) / n_v  # q(z_t = z | z_s = v), per v
            q_s_given_x = a_s * x + (1 - a_s) / n_v
            bayes = q_t_given_s * q_s_given_x
            bayes = bayes / bayes.sum()
            got = uniform.posterior(torch.tensor(x)[None, None], torch.tensor([[z]]), t, s)[0, 0].numpy()
            assert got.sum() == pytest.approx(1.0, abs=1e-12)
            assert np.allclose(got, bayes, atol=1e-12)


@torch.no_grad()
def model_belief(model, z: torch.Tensor, t) -> torch.Tensor:
    """What the model believes x is (B, L, V), float64: the s = 0 posterior
    x_theta(v) (V alpha_t delta_{v, z} + 1 - alpha_t), normalised (what a record's top-k shows)."""
    z = z if z.dim() == 2 else z[None]
    t = torch.full((z.shape[0],), float(t))
    x_theta = torch.softmax(model(z, t).double(), -1)
    return uniform.posterior(x_theta, z, t.double(), torch.zeros_like(t, dtype=torch.float64), "linear")


def test_model_belief_is_the_s0_posterior():
    torch.manual_seed(0)
    model = uniform.VARIANT.build_model(training.TrainConfig(variant="uniform")).eval()
    z = torch.randint(0, toy_language.V, (5, toy_language.L))
    t = 0.4
    b = model_belief(model, z, t)
    with torch.no_grad():
        x_theta = torch.softmax(model(z, torch.full((5,), t)).double(), -1)
    a = 1 - t
    manual = x_theta * (toy_language.V * a * torch.nn.functional.one_hot(z, toy_language.V) + 1 - a)
    assert torch.allclose(b, manual / manual.sum(-1, keepdim=True), atol=1e-6)
    assert torch.allclose(b.sum(-1), torch.ones(5, toy_language.L, dtype=torch.float64))


# ------------------------------------------------------------------------- sampler


class OracleDenoiser(torch.nn.Module):
    """The exact leave-one-out posterior of the toy language, as logits: the ideal x_theta."""

    def forward(self, z, t):
        pi = uniform.leave_one_out_posterior(z.numpy(), schedules.get("linear").alpha(t.double().numpy()))
        with np.errstate(divide="ignore"):
            return torch.as_tensor(np.log(pi))


def test_sampler_with_the_oracle_samples_the_language():
    """The reverse step with the exact x_theta: many steps sample (nearly) the data distribution."""
    x = uniform.VARIANT.sample(OracleDenoiser(), 1000, 50, seed=0)
    m = toy_language.sample_metrics(x.tolist())
    assert m.validity >= 0.95
    assert m.tv < 0.25


def test_sampler_records():
    torch.manual_seed(0)
    model = uniform.VARIANT.build_model(training.TrainConfig(variant="uniform")).eval()
    steps = 7
    traj = uniform.VARIANT.trajectory(model, steps, seed=3)
    assert traj.variant == "uniform" and traj.mask_id is None and traj.vocab == list(toy_language.UNITS)
    assert traj.settings["steps"] == steps and traj.settings["strategy"] == "ancestral"
    assert traj.n_steps == steps
    assert traj.records[0].t == 1.0 and traj.records[-1].s == 0.0
    n_changes = 0
    for k, rec in enumerate(traj.records, start=1):
        before, after = traj.tokens_at(k - 1), rec.tokens
        assert rec.changed == [i for i in range(toy_language.L) if before[i] != after[i]]
        n_changes += len(rec.changed)
        assert rec.t > rec.s
        belief = model_belief(model, torch.tensor(before), rec.t)[0]  # the s = 0 posterior given z_t
        for i in range(toy_language.L):
            assert np.allclose(rec.topk_probs[i], belief[i, rec.topk_ids[i]].numpy(), atol=1e-6)
        for i, tok in enumerate(after):  # confidence = belief probability of the unit now held
            p = dict(zip(rec.topk_ids[i], rec.topk_probs[i]))
            assert rec.confidence[i] == pytest.approx(p[tok], abs=1e-6)
            assert sum(rec.topk_probs[i]) == pytest.approx(1.0, abs=1e-4)
    assert n_changes > 0
    again = uniform.VARIANT.trajectory(model, steps, seed=3)
    assert again.to_dict() == traj.to_dict()
    assert uniform.VARIANT.trajectory(model, steps, seed=4).to_dict() != traj.to_dict()
    assert Trajectory.from_json(traj.to_json()) == traj
    # x_init is the starting sequence
    start = list(toy_language.encode("we are our s"))
    assert uniform.VARIANT.trajectory(model, 2, seed=0, x_init=start).initial == start


def test_sample_ids_batched_and_seeded():
    torch.manual_seed(0)
    model = uniform.VARIANT.build_model(training.TrainConfig(variant="uniform")).eval()
    a = uniform.VARIANT.sample(model, 50, 4, seed=1)
    assert a.shape == (50, toy_language.L) and a.dtype == torch.long
    assert int(a.min()) >= 0 and int(a.max()) < toy_language.V
    assert torch.equal(a, uniform.VARIANT.sample(model, 50, 4, seed=1))
    with pytest.raises(ValueError):
        uniform.VARIANT.sample(model, 5, 4, seed=1, clamp=True)


def test_loss_is_a_finite_differentiable_scalar():
    torch.manual_seed(0)
    model = uniform.VARIANT.build_model(training.TrainConfig(variant="uniform"))
    x0 = torch.as_tensor(toy_language.support_arrays().x[:64])
    value = uniform.loss(model, x0, "linear", torch.Generator().manual_seed(0))
    assert value.dim() == 0 and torch.isfinite(value) and value > 0
    value.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


# ------------------------------------------------------------ the shipped checkpoint


@pytest.fixture(scope="module")
def shipped():
    torch.set_num_threads(1)
    model, meta = training.load_checkpoint(training.default_checkpoint("uniform"))
    assert meta["variant"] == "uniform"
    return model


def test_shipped_checkpoint_nelbo(shipped):
    """NELBO <= 1.01 H (its training target) and not below H beyond 3 standard errors; the control variate
    is unbiased."""
    h = toy_language.entropy_bits_per_unit()
    nelbo, se = uniform.VARIANT.nelbo(shipped, EvalSettings(n_t=200, seed=123))
    assert 0 < se < 0.005
    assert nelbo <= 1.01 * h + 3 * se
    assert nelbo >= h - 3 * se
    # fresh samples without the control variate, and the oracle's plain estimate of H
    f_model, f_oracle = uniform.nelbo_terms(shipped, n_t=100, generator=torch.Generator().manual_seed(7))
    p = toy_language.support_arrays().p
    plain, se_plain = (v / uniform.BITS for v in uniform.stratified_mean(f_model, p))
    oracle, se_oracle = (v / uniform.BITS for v in uniform.stratified_mean(f_oracle, p))
    assert se_plain > 3 * se  # what the control variate buys
    assert abs(oracle - h) <= 3 * se_oracle
    assert abs(plain - nelbo) <= 3 * math.hypot(se_plain, se)


def test_shipped_checkpoint_cli_samples_are_valid(shipped):
    out = subprocess.run(
        [sys.executable, *"-m dlm_core sample --variant uniform --n 2000 --steps 24 --strategy ancestral".split()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = out.stdout.splitlines()
    assert len(lines) == 2000
    m = toy_language.sample_metrics([toy_language.encode(line) for line in lines])
    assert m.validity >= 0.95
