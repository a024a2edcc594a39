"""The training lab (dlm_core/studies/training_lab.py, dlm_core/variants/masked_objectives.py): each choice changes
training as stated, each run is measured by the exact bound of what it trained for, the presets run through the job
queue, and the page and the CLI take the choices."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import run_cli
from streamlit.testing.v1 import AppTest
from test_pages import APP

from dlm_core import schedules
from dlm_core import toy_language as T
from dlm_core.studies import training, training_data, training_lab
from dlm_core.variants import masked
from dlm_core.variants import masked_objectives as mo

SA = T.support_arrays()
X = torch.as_tensor(SA.x)
P = torch.as_tensor(SA.p)
BITS = T.L * math.log(2)


def batch_of(n: int, seed: int) -> torch.Tensor:
    return X[torch.multinomial(P, n, replacement=True, generator=torch.Generator().manual_seed(seed))]


def loss_mean(model, cfg, n_batches: int = 24, size: int = 2048) -> tuple[float, float]:
    """The lab loss's mean over independent batches (nats per sentence) and its standard error."""
    fn = masked.VARIANT.objective(cfg)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        vals = [float(fn(model, batch_of(size, 100 + b), g)) for b in range(n_batches)]
    return float(np.mean(vals)), float(np.std(vals, ddof=1) / math.sqrt(n_batches))


@pytest.fixture(scope="module")
def nelbo_nats(masked_model):
    return float(np.sum(SA.p * masked.exact_nelbo(SA.x, masked.log_probs_fn(masked_model))))


# ------------------------------------------------------------------------------ the loss weighting


@pytest.mark.parametrize("weighting", ["k", "elbo"])
def test_the_nelbo_weightings_estimate_the_exact_bound(masked_model, nelbo_nats, weighting):
    mean, se = loss_mean(masked_model, training.default_config("masked", weighting=weighting, targets="sampled"))
    assert abs(mean - nelbo_nats) < 4 * se + 1e-3


def test_the_unweighted_loss_is_not_a_bound(masked_model, nelbo_nats):
    """Weight 1 instead of 1/t: its expectation sits far below the NELBO, and below H itself."""
    mean, se = loss_mean(masked_model, training.default_config("masked", weighting="unweighted", targets="sampled"),
                         n_batches=8)
    assert mean + 4 * se < T.entropy_bits() * math.log(2) < nelbo_nats
    bert, _ = loss_mean(masked_model, training.default_config("masked", weighting="bert", targets="sampled"), 4)
    assert bert < T.entropy_bits() * math.log(2) / T.L  # a mean over the masked units: per unit, below H


def test_bert_masks_fifteen_percent_and_averages():
    x = batch_of(20000, 1)
    z, w, u = mo.draw_masks(x, "bert", generator=torch.Generator().manual_seed(0))
    n = (z == T.MASK_ID).sum(-1)
    share = float(n.double().mean()) / T.L
    assert abs(share - mo.BERT_RATE) < 4 * math.sqrt(0.15 * 0.85 / (20000 * T.L))
    assert torch.allclose(w, 1 / n.clamp_min(1).double()) and torch.all(u == mo.BERT_RATE)


# ----------------------------------------------------------------------------------- the schedule


@pytest.mark.parametrize("schedule", ["linear", "cosine", "geometric"])
def test_every_schedule_masks_by_its_alpha_and_estimates_the_same_bound(masked_model, nelbo_nats, schedule):
    x = batch_of(30000, 2)
    z, w, u = mo.draw_masks(x, "elbo", schedule, generator=torch.Generator().manual_seed(1))
    # the share masked follows 1 - alpha_t over the drawn t: on average int_0^1 (1 - alpha_t) dt
    grid = np.linspace(mo.EPS_T, 1, 200001)
    expected = np.trapezoid(1 - schedules.get(schedule).alpha(grid), grid) / (1 - mo.EPS_T)
    share = float((z == T.MASK_ID).double().mean())
    assert abs(share - expected) < 4 * math.sqrt(expected * (1 - expected) / 30000) + 2e-3
    t = torch.tensor([0.3, 0.7], dtype=torch.float64)
    assert torch.allclose(schedules.get(schedule).loss_weight(t),
                          -schedules.get(schedule).alpha_prime(t) / (1 - schedules.get(schedule).alpha(t)))
    # weighted by -alpha'_t / (1 - alpha_t), every schedule's loss estimates the same NELBO (only its noise differs)
    mean, se = loss_mean(masked_model, training.default_config("masked", weighting="elbo", schedule=schedule,
                                                               targets="sampled"), n_batches=16)
    assert abs(mean - nelbo_nats) < 4 * se + 2e-3


def test_the_geometric_schedule_runs_from_data_to_noise():
    g = schedules.get("geometric")
    assert g.alpha(0.0) == pytest.approx(1.0) and g.alpha(1.0) == pytest.approx(0.0, abs=1e-12)
    t = np.linspace(0, 1, 101)
    assert np.all(np.diff(g.alpha(t)) < 0) and g.alpha(0.5) > schedules.get("linear").alpha(0.5)
    h = 1e-6
    assert np.allclose((g.alpha(t[1:-1] + h) - g.alpha(t[1:-1] - h)) / (2 * h), g.alpha_prime(t[1:-1]), rtol=1e-5)


# ------------------------------------------------------------------------------------ the time input


def test_the_time_input_reaches_the_network_and_its_bound_is_exact(masked_model):
    cfg = training.default_config("masked", weighting="elbo", time_input=True)
    timed = training.build_model(cfg).eval()
    assert timed.cfg.time_input and not masked_model.cfg.time_input
    z = torch.full((2, T.L), T.MASK_ID)
    with torch.no_grad():
        assert not torch.allclose(timed(z, torch.tensor([0.1, 0.9]))[0], timed(z, torch.tensor([0.1, 0.9]))[1])
    # the shipped weights with a time input that adds nothing: the quadrature over the noise level gives the exact
    # NELBO of the model without one (Gauss-Legendre is exact for its polynomial weights)
    state = {**timed.state_dict(), **masked_model.state_dict()}
    timed.load_state_dict(state)
    torch.nn.init.zeros_(timed.time_mlp[2].weight)
    torch.nn.init.zeros_(timed.time_mlp[2].bias)
    assert mo.exact_bound(timed, masked.revealed_table) == pytest.approx(masked.VARIANT.nelbo(masked_model)[0],
                                                                         rel=1e-9)
    # and it samples: the sampler feeds it the share of [MASK] on the canvas
    assert masked.ToyMaskedLM(timed).takes_time and masked.VARIANT.sample(timed, 20, seed=1).shape == (20, T.L)


# ---------------------------------------------------------------------------------- instruction tuning


@pytest.mark.parametrize("weighting", ["k", "elbo", "unweighted", "bert"])
def test_instruction_style_training_never_masks_a_prompt_position(weighting):
    x = batch_of(5000, 3)
    n = mo.prompt_lengths(x)
    assert set(n.tolist()) == {1, 2, 3}  # PRON, POSS N / N s, POSS N s
    for seed in range(5):
        z, _, _ = mo.draw_masks(x, weighting, task="instruction", generator=torch.Generator().manual_seed(seed))
        masked_at = z == T.MASK_ID
        assert not (masked_at & (torch.arange(T.L)[None] < n[:, None])).any()  # the subject: never
        least = {"k": 1.0, "elbo": 0.7, "unweighted": 0.7, "bert": 0.3}[weighting]  # (a small t may mask nothing)
        assert masked_at.any(-1).float().mean() >= least  # the response: yes


def test_the_instruction_floor_and_what_each_task_can_do(masked_model):
    h_subject = 2 + 1.5 * math.log2(3)  # 4 subject forms (1/4 each), then 3, 9, 3 or 9 equally likely fills
    assert mo.subject_entropy_bits() == pytest.approx(h_subject, abs=1e-12)
    assert mo.floor_bits("instruction") == pytest.approx((T.entropy_bits() - h_subject) / T.L, abs=1e-12)
    with pytest.raises(ValueError, match="sampled"):
        training.default_config("masked", task="instruction")  # the exact conditional does not know the prompt
    # a pre-trained model does not know where the prompt ends: its bound given the subject is above the floor,
    # which an instruction-tuned model reaches (tests/test_training_lab::test_presets... trains one)
    given = mo.exact_bound(masked_model, masked.revealed_table, "instruction")
    assert given - mo.floor_bits("instruction") > 0.02


# ------------------------------------------------------------------------------------- epochs


def test_a_fixed_training_set_is_seen_epoch_after_epoch():
    data = training_data.fixed_set(96, seed=4)
    assert torch.equal(data, training_data.fixed_set(96, seed=4)) and len(data) == 96
    batches = training_data.epoch_batches(data, 32, torch.Generator().manual_seed(0))
    key = lambda rows: sorted(map(tuple, rows.tolist()))  # noqa: E731
    for _ in range(3):  # each epoch of three batches holds the 96 sentences once, in a new order
        epoch = torch.cat([next(batches) for _ in range(3)])
        assert key(epoch) == key(data)
    with pytest.raises(ValueError, match="sampled"):
        training.default_config("masked", train_size=96)  # exact targets would teach the whole language
    cfg = training.default_config("masked", train_size=96, targets="sampled", steps=6)
    assert training_lab.epochs_of(cfg, 6) == 6 * 128 / 96
    assert training.lab_choices(cfg) == {"train_size": 96} and "train_size" not in \
        training.default_config("masked").to_dict()


# --------------------------------------------------------------------------- presets, page and CLI


def test_presets_name_one_choice_per_run_and_reproduce_the_article():
    assert set(training_lab.PRESETS) == {"weighting", "time", "schedule", "instruction", "epochs", "versus-ar"}
    for p in training_lab.PRESETS.values():
        cfgs = [training_lab.run_config(p, r) for r in p.runs]
        assert len(cfgs) >= 2 and all(c.steps == p.steps for c in cfgs)
        differ = [{k for k in c.to_dict() if c.to_dict()[k] != cfgs[0].to_dict().get(k)} for c in cfgs[1:]]
        assert all(len(d - {"variant"}) <= 1 for d in differ), (p.key, differ)  # one choice changed per run


def test_the_page_runs_a_preset_through_the_queue():
    from dlm_core.serving import jobs

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()  # registers the pages (the lab's url_path is not its file name)
    at.query_params.update({"lab_preset": "instruction", "lab_steps": "30"})
    at.switch_page("pages/views/training_lab.py")
    at.run()
    assert not at.exception and at.segmented_control(key="lab_preset").value == "instruction"
    done = jobs.default_queue().counts[jobs.DONE]
    next(b for b in at.button if b.key == "lab_start").click().run()
    runs = at.session_state["lab_runs"]["jobs"]
    assert [j.cfg.task for j in runs] == ["pretrain", "instruction"] and all(j.cfg.steps == 30 for j in runs)
    for j in runs:
        assert j.wait(timeout=300) and j.error is None
    at.run()
    assert not at.exception and jobs.default_queue().counts[jobs.DONE] == done + 2
    table = next(md.value for md in at.markdown if md.value.startswith("| run | bound"))
    assert "H(response \\| subject)" in table or "H(response / subject)" in table
    readings = [md.value for md in at.markdown if md.value.startswith("**instruction")]
    assert readings and "given a subject" in readings[0]
    final = runs[1].final
    assert final["floor_name"] == "H(response | subject)" and final["gap_bits"] == pytest.approx(
        final["bound_bits"] - mo.floor_bits("instruction"))
    assert any(s.value.startswith(("Closest", "All")) for s in at.success)


def test_the_cli_takes_the_lab_choices(tmp_path):
    out = json.loads(run_cli("train", "--variant", "masked", "--steps", "30", "--weighting", "unweighted",
                             "--out", str(tmp_path / "u")).stdout)
    lab = out["lab"]
    assert lab["choices"] == {"weighting": "unweighted"} and not lab["loss_is_bound"]
    assert lab["gap_bits"] == pytest.approx(lab["bound_bits"] - T.entropy_bits_per_unit())
    meta = json.loads((tmp_path / "u" / "checkpoint.json").read_text())
    assert meta["training"]["weighting"] == "unweighted"
    bad = run_cli("train", "--variant", "masked", "--task", "instruction", "--out", str(tmp_path / "i"), check=False)
    assert bad.returncode == 2 and bad.stderr.startswith("error:") and "sampled" in bad.stderr
    bad = run_cli("train", "--variant", "uniform", "--weighting", "elbo", "--out", str(tmp_path / "w"), check=False)
    assert bad.returncode == 2 and "no weighting choice" in bad.stderr
