"""The autoregressive twin (dlm_core/variants/autoregressive.py): the masked network with a causal mask and shifted
targets; its exact likelihood over the 216 sentences, its left-to-right sampler, and every page that lists variants
still working with it."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_pages import open_page, shown_units, stage_of

from dlm_core import toy_language as T
from dlm_core.studies import training
from dlm_core.variants import autoregressive as ar
from dlm_core.variants.evaluate import EvalSettings
from dlm_core.variants.registry import VARIANTS

SA = T.support_arrays()
H = T.entropy_bits_per_unit()


@pytest.fixture(scope="module")
def model():
    return training.load_checkpoint(training.default_checkpoint("autoregressive"))[0]


class Oracle(torch.nn.Module):
    """The language's own next-unit probabilities behind the twin's interface (input: [BOS, x^1 .. x^(L-1)])."""

    def forward(self, z, t=None):
        x = torch.cat([z[:, 1:], torch.full_like(z[:, :1], T.PAD_ID)], 1)  # the positions before each one
        return torch.log(ar.prefix_conditionals(x).double().clamp_min(1e-300))


def test_the_twin_is_the_masked_network_with_a_causal_mask():
    cfg = training.default_config("autoregressive")
    twin, masked = training.build_model(cfg), training.build_model(training.default_config("masked"))
    assert twin.cfg.causal and not masked.cfg.causal
    assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in masked.state_dict().items()}
    # causal: the output at i does not move when anything at or after i changes in the input
    g = torch.Generator().manual_seed(0)
    z = torch.randint(0, T.V + 1, (8, T.L), generator=g)
    out = twin(z)
    for i in range(T.L):
        z2 = z.clone()
        z2[:, i + 1:] = torch.randint(0, T.V + 1, (8, T.L - i - 1), generator=g)
        assert torch.allclose(twin(z2)[:, i], out[:, i], atol=1e-6)
    assert torch.equal(ar.shift_right(torch.tensor([[1, 2, 3, 4, 5, 6]])), torch.tensor([[T.MASK_ID, 1, 2, 3, 4, 5]]))


def test_its_nll_is_the_exact_sum_over_the_216_sentences_and_at_least_h(model):
    value, se, details = ar.VARIANT.bound(model, EvalSettings())
    # the same likelihood position by position, each from a prefix alone (nothing to its right in the input)
    logq = np.zeros(len(SA.x))
    with torch.no_grad():
        for i in range(T.L):
            prefix = ar.shift_right(torch.as_tensor(SA.x))[:, : i + 1]
            logp = F.log_softmax(model(prefix)[:, i].double(), -1)
            logq += logp[torch.arange(len(SA.x)), torch.as_tensor(SA.x[:, i])].numpy()
    assert value == pytest.approx(float(np.sum(SA.p * -logq)) / (T.L * math.log(2)), rel=1e-9)
    assert se == 0.0 and value >= H and details["nll_bits_per_unit"] == value
    assert details["valid_mass"] == pytest.approx(float(np.exp(logq).sum()), rel=1e-9) and details["valid_mass"] <= 1
    # with the language's own conditionals the NLL is exactly H, and every sentence has its own probability
    oracle = Oracle()
    assert ar.VARIANT.bound(oracle, EvalSettings())[0] == pytest.approx(H, abs=1e-9)
    assert np.allclose(np.exp(ar.sentence_log_probs(oracle, SA.x)), SA.p, rtol=1e-9)
    # the shipped twin is at the floor (README, "Training": <= 1.01 H; the bench times it)
    assert value <= 1.01 * H


def test_the_loss_is_the_nll_and_exact_targets_average_the_sampled_one(model):
    x = torch.as_tensor(SA.x)
    p = torch.as_tensor(SA.p)
    nll = float(np.sum(SA.p * -ar.sentence_log_probs(model, SA.x)))
    with torch.no_grad():
        per_sentence = torch.stack([ar.loss(model, x[n:n + 1], targets="sampled") for n in range(len(x))]).double()
        assert float((p * per_sentence).sum()) == pytest.approx(nll, rel=1e-5)  # sampled targets: -log q(x) itself
        # exact targets score each position against p(x^i | x^<i): the same expectation over the language
        exact = torch.stack([ar.loss(model, x[n:n + 1], targets="exact") for n in range(len(x))]).double()
        assert float((p * exact).sum()) == pytest.approx(nll, rel=1e-5)
        assert not torch.allclose(exact, per_sentence)  # ... but sentence by sentence they differ
    with pytest.raises(ValueError, match="targets"):
        ar.loss(model, x[:2], targets="oracle")


def test_samples_are_left_to_right_one_commit_per_step(model):
    traj = ar.VARIANT.trajectory(model, seed=3)
    assert traj.n_steps == T.L and traj.initial == [T.MASK_ID] * T.L
    for k, rec in enumerate(traj.records, start=1):
        assert rec.committed == [k - 1] and rec.tokens[k:] == [T.MASK_ID] * (T.L - k)
        assert rec.tokens[:k - 1] == traj.records[k - 2].tokens[:k - 1] if k > 1 else True
        assert rec.confidence[k - 1] is not None and sum(c is not None for c in rec.confidence) == 1
        assert rec.topk_ids[k - 1] and not any(rec.topk_ids[i] for i in range(T.L) if i != k - 1)
    assert json.loads(traj.to_json())["records"][0]["committed"] == [0]
    from dlm_core import trajectory_file

    assert trajectory_file.load(traj.to_json()).records == traj.records  # it exports and replays (checked)
    # a budget is the most steps it may take: 24 still takes 6; fewer than 6 cannot write the sentence
    assert ar.VARIANT.trajectory(model, 24, seed=3).final == traj.final and traj.settings["variant"] == "autoregressive"
    with pytest.raises(ValueError, match="one unit per step"):
        ar.VARIANT.trajectory(model, 3, seed=3)


def test_samples_follow_the_exact_likelihood(model):
    n = 20000
    x = ar.VARIANT.sample(model, n, seed=5).numpy()
    q = np.exp(ar.sentence_log_probs(model, SA.x))
    valid = np.array([tuple(r) in SA.index for r in x.tolist()])
    assert abs(valid.mean() - q.sum()) <= 4 * math.sqrt(q.sum() * (1 - q.sum()) / n) + 1e-4
    counts = np.bincount([SA.index[tuple(r)] for r in x[valid].tolist()], minlength=len(SA.p))
    top = np.argsort(-q)[:10]  # the ten most likely sentences: their shares within 4 standard errors
    assert np.all(np.abs(counts[top] / n - q[top]) <= 4 * np.sqrt(q[top] * (1 - q[top]) / n))
    cold = ar.VARIANT.sample(model, 50, seed=5, temperature=0.0)
    assert (cold == cold[0]).all()  # temperature 0: always the most likely unit


def test_pins_stand_from_the_start_and_the_rest_is_written_left_to_right(model):
    pins = ((3, T.ID["our"]),)
    traj = ar.VARIANT.trajectory(model, 5, seed=1, pins=pins)
    assert traj.initial[3] == T.ID["our"] and traj.fixed == [3] and traj.n_steps == 5
    assert [r.committed for r in traj.records] == [[0], [1], [2], [4], [5]] and traj.final[3] == T.ID["our"]
    branch = ar.VARIANT.branch(model, traj, 2, __import__("dlm_core.sampling.branching", fromlist=["Edits"]).Edits(
        pins={5: T.PAD_ID}), seed=9)
    assert branch.records[:2] == traj.records[:2] and branch.final[5] == T.PAD_ID and branch.final[3] == T.ID["our"]


def test_exact_validity_and_forward_kl_in_the_report(model):
    report = ar.VARIANT.evaluate(model, EvalSettings(n_samples=400, steps=(1, 6, 24)))
    assert set(report.by_steps) == {"6", "24"}  # no budget below 6 (one unit per step)
    q = np.exp(ar.sentence_log_probs(model, SA.x))
    cell = report.by_steps["6"]
    assert cell.validity_exact == pytest.approx(q.sum()) == ar.VARIANT.exact_validity(model, 6)
    assert cell.forward_kl_bits_exact == pytest.approx(T.L * (report.nelbo_bits_per_unit - H), abs=1e-9)
    assert ar.VARIANT.exact_validity(model, 3) is None


def test_its_forward_view_hides_the_future():
    x0 = T.encode("dog s are our friend s")
    hidden = [ar.VARIANT.forward_view(None, x0, t)["changed"] for t in np.linspace(0, 1, 21)]
    assert hidden[0] == [] and hidden[-1] == list(range(T.L))
    assert all(set(a) <= set(b) for a, b in zip(hidden, hidden[1:]))  # more hidden as t grows, from the right
    assert all(h == list(range(T.L - len(h), T.L)) for h in hidden)


# ------------------------------------------------------------------------------- the pages


def test_reverse_page_plays_the_twin_left_to_right():
    at = open_page("pages/views/reverse.py", {"variant": "autoregressive"})
    d = stage_of(at)
    assert d["T"] == 6 and at.slider(key="steps").value == 6
    for k in range(1, 7):
        assert shown_units(at, k)[k:] == ["[MASK]"] * (6 - k) and "[MASK]" not in shown_units(at, k)[:k]
    assert any("causal mask" in c.value for c in at.caption)
    at.slider(key="steps").set_value(3).run()  # too few steps: one sentence, nothing lost
    assert not at.exception and any("one unit per step" in e.value for e in at.error)


def test_forward_train_and_infill_pages_with_the_twin():
    at = open_page("pages/views/forward.py", {"fwd_variant": "autoregressive", "fwd_t": "0.5"})
    assert shown_units(at, 10)[3:] == ["[MASK]"] * 3 and "[MASK]" not in shown_units(at, 10)[:3]
    at = open_page("pages/views/infill.py", {"variant": "autoregressive", "pins": "4:our"})
    assert not at.exception and not at.error
    from conftest import train_on_the_page
    from streamlit.testing.v1 import AppTest
    from test_pages import APP

    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["train_variant"] = "autoregressive"
    at.switch_page("pages/views/train.py")
    at.run()
    job = train_on_the_page(at, 50)
    assert job.result is not None and job.cfg.variant == "autoregressive" and job.snapshot()["nelbo"]
    at.run()
    assert not at.exception and any("Done after 50 steps" in s.value for s in at.success)


def test_the_left_to_right_lesson_shows_the_trained_twin(model):
    from dlm_core.classroom import lessons
    from dlm_core.classroom.lesson_plan import SENTENCE
    from pages import md_escape

    traj = lessons.autoregressive_trajectory({"autoregressive": model})
    assert T.decode(traj.final) == SENTENCE and [r.committed for r in traj.records] == [[k] for k in range(6)]
    rows = lessons.autoregressive_rows(traj)
    assert [r["unit"] for r in rows] == SENTENCE.split()
    assert float(rows[0]["exact p(unit | before)"]) == pytest.approx(1 / 12, abs=5e-4)
    assert all(abs(float(r["model p(unit | before)"]) - float(r["exact p(unit | before)"])) < 0.01 for r in rows)
    at = open_page("pages/views/lessons.py", {"lesson": "1", "step": "1"})
    assert not any("| dog |" in m.value for m in at.markdown)  # a question step: the table waits for the guess
    at.radio(key="guess-1-1").set_value(0).run()
    next(b for b in at.button if b.key == "lesson_reveal").click().run()
    model_p, exact_p = (md_escape(rows[0][k]) for k in ("model p(unit | before)", "exact p(unit | before)"))
    first = f"| 1 | dog | {model_p} | {exact_p} |"
    assert any(first in m.value for m in at.markdown)  # the page's table is these rows
    assert any("learned the conditionals" in i.value for i in at.info)  # trained: within 0.01 at every step


def test_the_diffusion_variants_are_unchanged():
    """Adding the twin changes no number of the others: the masked checkpoint's recorded exact NELBO comes back to
    float32 rounding (the denoiser's path without a causal mask is the one it was trained with)."""
    meta = json.loads((training.default_checkpoint("masked") / "checkpoint.json").read_text())
    model = training.load_checkpoint(training.default_checkpoint("masked"))[0]
    assert VARIANTS["masked"].nelbo(model)[0] == pytest.approx(meta["metrics"]["nelbo_bits_per_unit"], rel=1e-9)
    assert [v.family for v in VARIANTS.values()] == ["diffusion"] * 3 + ["autoregressive"]
