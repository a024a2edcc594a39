"""The stepwise fixed-count sampler: counts, blocks, determinism, records, errors."""

import json

import pytest
import torch
from oracles import chi2_pvalue

from dlm_core import toy_language as T
from dlm_core.sampling.masked_sampler import MaskedSampler, MaskedSamplerConfig, plan_blocks, spread_counts
from dlm_core.sampling.sampler import run_trajectory
from dlm_core.trajectory import Trajectory
from dlm_core.variants import masked


def test_spread_counts():
    assert spread_counts(6, 4) == [2, 2, 1, 1]
    assert spread_counts(3, 6) == [1, 1, 1, 0, 0, 0]
    for n in range(0, 20):
        for s in range(1, 8):
            c = spread_counts(n, s)
            assert sum(c) == n and max(c) - min(c) <= 1 and c == sorted(c, reverse=True)


@pytest.mark.parametrize("strategy", ["random", "low-confidence", "margin", "entropy"])
@pytest.mark.parametrize("steps, block", [(6, None), (4, None), (2, 3), (4, 3), (6, 2), (3, 2)])
def test_commits_the_expected_number_per_step(masked_model, strategy, steps, block):
    lm = masked.ToyMaskedLM(masked_model)
    s = MaskedSampler(lm, MaskedSamplerConfig(steps=steps, strategy=strategy, block_length=block, seed=5),
                      torch.full((16, 6), T.MASK_ID))
    blen = block or 6
    per_block = steps // (6 // blen)
    expected = spread_counts(blen, per_block) * (6 // blen)
    for j in range(steps):
        out = s.step()
        assert (out.committed.sum(-1) == expected[j]).all()
        b = j // per_block  # only the current block may be committed
        outside = torch.ones(6, dtype=torch.bool)
        outside[b * blen:(b + 1) * blen] = False
        assert not out.committed[:, outside].any()
    assert s.done and not (s.x == T.MASK_ID).any()


def test_low_confidence_commits_the_most_confident(masked_model):
    lm = masked.ToyMaskedLM(masked_model)
    s = MaskedSampler(lm, MaskedSamplerConfig(steps=3, strategy="low-confidence", temperature=0.0),
                      torch.full((8, 6), 13))
    out = s.step()
    conf = out.confidence
    for b in range(8):
        chosen = conf[b][out.committed[b]]
        others = conf[b][~out.committed[b]]
        assert chosen.min() >= others.max()


def test_same_seed_same_trajectory_and_json_round_trip(masked_model):
    a = masked.VARIANT.trajectory(masked_model, 6, seed=11, strategy="random")
    b = masked.VARIANT.trajectory(masked_model, 6, seed=11, strategy="random")
    c = masked.VARIANT.trajectory(masked_model, 6, seed=12, strategy="random")
    assert a.to_dict() == b.to_dict()
    assert [r.tokens for r in a.records] != [r.tokens for r in c.records] or a.final != c.final
    back = Trajectory.from_json(a.to_json())
    assert back == a
    assert json.loads(a.to_json())["records"][0]["step"] == 1
    assert a.n_steps == 6 and a.tokens_at(0) == [T.MASK_ID] * 6
    assert sorted(i for r in a.records for i in r.committed) == list(range(6))
    # a prediction (the full distribution over 13 units) exactly where the position was masked
    for k, r in enumerate(a.records):
        before = a.tokens_at(k)
        for i, p in enumerate(r.topk_probs):
            assert (len(p) == 13 and abs(sum(p) - 1) < 1e-4) if before[i] == T.MASK_ID else p == []


def test_temperature_zero_is_deterministic(masked_model):
    a = masked.VARIANT.trajectory(masked_model, 3, seed=1, strategy="low-confidence", temperature=0.0)
    b = masked.VARIANT.trajectory(masked_model, 3, seed=2, strategy="low-confidence", temperature=0.0)
    assert a.final == b.final


def test_pinned_positions_stay_and_condition_the_rest(masked_model):
    pinned = {0: T.ID["our"], 1: T.ID["dog"], 2: T.ID["s"]}
    traj = masked.VARIANT.trajectory(masked_model, 3, seed=0, x_init=masked.canvas(pinned), strategy="low-confidence")
    assert traj.fixed == [0, 1, 2]
    assert traj.final[:3] == [T.ID["our"], T.ID["dog"], T.ID["s"]]
    assert all(i not in (0, 1, 2) for r in traj.records for i in r.committed)


def test_reuse_of_the_last_output_when_nothing_changed(masked_model):
    calls = []

    class Counting(masked.ToyMaskedLM):
        def __call__(self, x):
            calls.append(1)
            return super().__call__(x)

    lm = Counting(masked_model)
    # 24 ancestral steps over 6 positions: many steps reveal nothing
    s = MaskedSampler(lm, MaskedSamplerConfig(steps=24, strategy="ancestral", seed=0), torch.full((1, 6), 13))
    records = []
    while not s.done:
        records.append(s.step())
    changed_steps = sum(1 for r in records if r.committed.any())
    assert len(calls) == s.model_calls and s.model_calls + s.reused == 24
    assert s.reused > 0 and s.model_calls <= changed_steps + 1
    # without reuse the samples are identical (same random stream), only slower
    s2 = MaskedSampler(masked.ToyMaskedLM(masked_model),
                       MaskedSamplerConfig(steps=24, strategy="ancestral", seed=0, reuse_output=False),
                       torch.full((1, 6), 13))
    while not s2.done:
        s2.step()
    assert torch.equal(s.x, s2.x) and s2.model_calls == 24


def test_guidance_masks_the_prompt_for_the_unconditional_pass(masked_model):
    seen = []

    class Spy(masked.ToyMaskedLM):
        def __call__(self, x):
            seen.append(x.clone())
            return super().__call__(x)

    x0 = torch.full((1, 6), T.MASK_ID)
    x0[0, :2] = torch.tensor([T.ID["our"], T.ID["dog"]])
    cfg = MaskedSamplerConfig(steps=4, strategy="low-confidence", cfg_scale=1.5, temperature=0.0)
    traj = run_trajectory(MaskedSampler(Spy(masked_model), cfg, x0, gen_start=2), "masked", [])
    assert len(seen) == 8  # a conditional and an unconditional pass per step
    assert (seen[1][0, :2] == T.MASK_ID).all() and (seen[0][0, :2] != T.MASK_ID).all()
    assert traj.final[:2] == [T.ID["our"], T.ID["dog"]] and T.MASK_ID not in traj.final


def test_clear_errors_for_bad_settings(masked_model):
    lm = masked.ToyMaskedLM(masked_model)
    with pytest.raises(ValueError, match="divisible by the block length"):
        MaskedSampler(lm, MaskedSamplerConfig(steps=4, block_length=4), torch.full((1, 6), 13))
    with pytest.raises(ValueError, match="divisible by the number of blocks"):
        MaskedSampler(lm, MaskedSamplerConfig(steps=3, block_length=3), torch.full((1, 6), 13))
    with pytest.raises(ValueError, match="unknown strategy"):
        MaskedSampler(lm, MaskedSamplerConfig(strategy="greedy"), torch.full((1, 6), 13))
    with pytest.raises(ValueError, match="one block"):
        MaskedSampler(lm, MaskedSamplerConfig(steps=2, strategy="ancestral", block_length=3), torch.full((1, 6), 13))
    assert plan_blocks(8, 4, 4) == (4, 2, 2)


@pytest.mark.parametrize("eta, schedule", [(0.0, "linear"), (0.3, "linear"), (0.4, "cosine")])
def test_remdm_keeps_the_forward_marginals(masked_model, eta, schedule):
    """ReMDM's reveal / re-mask probabilities keep P(masked after the step to s) = 1 - alpha_s."""
    import math

    from dlm_core import schedules

    n = 20000
    s = MaskedSampler(masked.ToyMaskedLM(masked_model),
                      MaskedSamplerConfig(steps=6, strategy="ancestral", remask_eta=eta, schedule=schedule, seed=4),
                      torch.full((n, 6), T.MASK_ID))
    remasked_total = 0
    prev = s.x.clone()
    while not s.done:
        out = s.step()
        remasked_total += int(out.remasked.sum())
        # a revealed unit either stays or goes back to [MASK]; it never turns into another unit
        kept = (prev != T.MASK_ID) & (out.x != T.MASK_ID)
        assert torch.equal(out.x[kept], prev[kept])
        assert torch.equal(out.remasked, (prev != T.MASK_ID) & (out.x == T.MASK_ID))
        if not s.done:
            frac = (out.x == T.MASK_ID).double().mean().item()
            target = 1 - schedules.get(schedule).alpha(out.s)
            assert abs(frac - target) < 5 * math.sqrt(target * (1 - target) / (n * 6)) + 1e-9
        prev = out.x.clone()
    assert (remasked_total > 0) == (eta > 0)
    assert not (s.x == T.MASK_ID).any()
    rec = out.to_record(0)
    assert isinstance(rec.remasked, list)


def test_remdm_only_with_ancestral(masked_model):
    with pytest.raises(ValueError, match="ancestral"):
        MaskedSampler(masked.ToyMaskedLM(masked_model), MaskedSamplerConfig(strategy="random", remask_eta=0.2),
                      torch.full((1, 6), 13))


# ------------------------------------------------- candidates: exact draws from softmax(logits / tau)


class FixedLogits:
    """A model whose logits are the same row at every position (the last id is [MASK])."""

    takes_time = False

    def __init__(self, row: torch.Tensor):
        self.row = row.float()
        self.mask_id = len(row) - 1
        self.vocab_size = len(row)
        self.device = torch.device("cpu")

    def __call__(self, x):
        return self.row.expand(*x.shape, -1).clone()


def fixed_row(n_ids: int, seed: int) -> torch.Tensor:
    """Logits with a few likely ids, a long tail, some ids of probability 0 (-inf) and [MASK] last."""
    g = torch.Generator().manual_seed(seed)
    row = torch.randn(n_ids, generator=g) * 2.0
    row[torch.randperm(n_ids, generator=g)[:6]] += 5.0
    row[torch.randperm(n_ids, generator=g)[:n_ids // 10]] = float("-inf")
    return row


@pytest.mark.parametrize("n_ids, tau, offset", [(14, 1.0, 0.0), (14, 0.6, 0.0), (700, 1.0, 0.0), (700, 0.7, 0.0),
                                                (700, 1.8, 0.0), (700, 0.5, 400.0)])
def test_candidates_are_exact_draws_from_the_tempered_softmax(n_ids, tau, offset):
    """One step of the low-confidence sampler with one step commits every position with its candidate: the
    candidates of 60,000 positions against softmax(logits / tau) computed here in float64 (a small vocabulary,
    one id per chunk; a large one, the two-level search over chunks of 256 ids with a shorter last chunk;
    a large offset, the path that subtracts each row's maximum)."""
    import numpy as np

    row = fixed_row(n_ids, seed=n_ids + int(10 * tau))
    row[:-1] += offset
    model = FixedLogits(row)
    counts = np.zeros(n_ids)
    for rep in range(3):
        s = MaskedSampler(model, MaskedSamplerConfig(steps=1, strategy="low-confidence", temperature=tau, seed=rep),
                          torch.full((40, 500), model.mask_id))
        out = s.step()
        assert s.done and out.committed.all()
        counts += np.bincount(out.x.reshape(-1).numpy(), minlength=n_ids)
    lg = row.float().double()  # the float32 logits the sampler sees, exactly
    lg[-1] = float("-inf")  # SUBS: never [MASK]
    p = torch.softmax(lg / tau, -1).numpy()
    assert counts[p == 0].sum() == 0  # an id of probability 0 is never drawn
    assert chi2_pvalue(counts, p * counts.sum()) > 1e-3
    # the probability recorded with each candidate is p_theta of it (tau = 1), whatever tau drew it
    conf = out.confidence[0].numpy()
    p1 = torch.softmax(lg, -1).numpy()
    assert np.allclose(conf, p1[out.x[0].numpy()], rtol=1e-6, atol=0)


@pytest.mark.parametrize("n_ids, tau", [(700, 1.0), (700, 0.7)])
def test_draws_stay_exact_when_many_proposals_are_rejected(monkeypatch, n_ids, tau):
    """Over a large vocabulary the draw proposes a chunk by its float32 mass (enlarged by a slack) and
    accepts it with probability (exact weight) / (mass): with a slack of 50 % a third of the proposals are
    rejected and drawn again, and the ids still follow softmax(logits / tau) exactly."""
    import numpy as np

    from dlm_core.sampling import masked_prediction  # (the draws moved there in the reorganisation)

    monkeypatch.setattr(masked_prediction, "FLOAT32_SLACK", 0.5)
    row = fixed_row(n_ids, seed=5)
    model = FixedLogits(row)
    s = MaskedSampler(model, MaskedSamplerConfig(steps=1, strategy="threshold", threshold=0.0, temperature=tau,
                                                 seed=9), torch.full((40, 500), model.mask_id))
    first = torch.Generator().manual_seed(9)
    torch.rand(20000, generator=first, dtype=torch.float64)  # one uniform per position ...
    out = s.step()
    assert not torch.equal(s.generator.get_state(), first.get_state())  # ... and more: proposals were rejected
    counts = np.bincount(out.x.reshape(-1).numpy(), minlength=n_ids)
    lg = row.double()
    lg[-1] = float("-inf")
    p = torch.softmax(lg / tau, -1).numpy()
    assert counts[p == 0].sum() == 0 and chi2_pvalue(counts, p * counts.sum()) > 1e-3


def test_topk_rows_equals_torch_topk_over_a_large_vocabulary():
    from dlm_core.sampling.masked_prediction import topk_rows

    g = torch.Generator().manual_seed(0)
    for n_ids, k in ((30522, 10), (5000, 13), (4097, 2), (300, 13)):
        lg = torch.randn(17, n_ids, generator=g) * 3
        lg[3, -1] = 50.0  # the maximum in the last, shorter chunk
        lg[4, :] = float("-inf")
        lg[4, 7] = 0.0
        v, i = topk_rows(lg, k)
        rv, ri = torch.topk(lg, k)
        assert torch.equal(v, rv)
        finite = torch.isfinite(rv)
        assert torch.equal(i[finite], ri[finite])  # distinct values: the same ids


@pytest.mark.parametrize("batch", [1, 5])
def test_records_made_on_demand_equal_the_whole_batch_tensors(masked_model, batch):
    """A record computes its own sequence's top k when asked; it equals the batch tensors (made when first
    read), and those are the model's softmax at the masked positions."""
    lm = masked.ToyMaskedLM(masked_model)
    x0 = torch.full((batch, 6), T.MASK_ID)
    x0[:, 1] = T.ID["dog"]
    s = MaskedSampler(lm, MaskedSamplerConfig(steps=3, strategy="random", seed=2, top_k=5), x0)
    while not s.done:
        before = s.x.clone()
        out = s.step()
        recs = [out.to_record(b, 5) for b in range(batch)]
        ids, probs = out.topk_ids, out.topk_probs
        assert ids.shape == (batch, 6, 5) and probs.dtype == torch.float64
        p = torch.softmax(lm(before).double(), -1)
        for b, rec in enumerate(recs):
            for i in range(6):
                if before[b, i] == T.MASK_ID:
                    ref_p, ref_i = torch.topk(p[b, i], 5)
                    assert rec.topk_ids[i] == ref_i.tolist() == ids[b, i].tolist()
                    assert rec.topk_probs[i] == pytest.approx(ref_p.tolist(), abs=1e-6)
                else:
                    assert rec.topk_ids[i] == [] and (ids[b, i] == -1).all()


# ------------------------------------------------------ confidence-threshold decoding (Fast-dLLM)


def run_all(sampler):
    outs = []
    while not sampler.done:
        outs.append(sampler.step())
    return outs


@pytest.mark.parametrize("tau", [0.0, 1.0, 0.7])
@pytest.mark.parametrize("block, pins", [(None, {}), (3, {}), (2, {}), (None, {1: "dog", 4: "is"}),
                                         (3, {0: "our", 4: "is"})])
def test_threshold_above_every_confidence_is_low_confidence_one_per_step(masked_model, tau, block, pins):
    """A threshold above 1 commits exactly one position per step (the most confident, within the current
    block), so it is the low-confidence fixed-count sampler with one step per masked position (every block
    as many steps as masked positions): the same candidates from the same random stream, token for token,
    at tau = 0 and tau > 0."""
    lm = masked.ToyMaskedLM(masked_model)
    pinned = {i: T.ID[u] for i, u in pins.items()}
    x0 = masked.canvas(pinned, batch=64)
    free = 6 - len(pins)
    thr = MaskedSampler(lm, MaskedSamplerConfig(steps=free, strategy="threshold", threshold=1.5, temperature=tau,
                                                block_length=block, seed=7), x0)
    ref = MaskedSampler(lm, MaskedSamplerConfig(steps=free, strategy="low-confidence", temperature=tau,
                                                block_length=block, seed=7), x0)
    a, b = run_all(thr), run_all(ref)
    assert len(a) == len(b) == free and thr.model_calls == free
    for oa, ob in zip(a, b, strict=True):
        assert (oa.committed.sum(-1) == 1).all()
        assert torch.equal(oa.committed, ob.committed) and torch.equal(oa.x, ob.x)
    assert torch.equal(thr.x, ref.x) and not (thr.x == T.MASK_ID).any()
    if tau > 0:  # and the candidates were drawn: another seed gives other sentences
        other = MaskedSampler(lm, MaskedSamplerConfig(steps=free, strategy="threshold", threshold=1.5,
                                                      temperature=tau, block_length=block, seed=8), x0)
        run_all(other)
        assert not torch.equal(other.x, thr.x)


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.6, 0.9])
def test_threshold_commits_every_confident_position_and_stops_when_nothing_is_masked(masked_model, threshold):
    lm = masked.ToyMaskedLM(masked_model)
    for block in (None, 3):
        cfg = MaskedSamplerConfig(steps=6, strategy="threshold", threshold=threshold, block_length=block, seed=3)
        s = MaskedSampler(lm, cfg, torch.full((200, 6), T.MASK_ID))
        prev, steps = s.x.clone(), 0
        while not s.done:
            out = s.step()
            steps += 1
            masked_before = prev == T.MASK_ID
            conf = out.confidence
            scored = ~torch.isnan(conf)
            for b in range(200):
                if not masked_before[b].any():
                    assert not out.committed[b].any()  # a finished sentence waits for the batch
                    continue
                lo = 0 if block is None else 3 * int(masked_before[b].nonzero()[0, 0] // 3)
                hi = 6 if block is None else lo + 3
                inside = torch.zeros(6, dtype=torch.bool)
                inside[lo:hi] = True
                assert torch.equal(scored[b], masked_before[b] & inside)  # the current block's masked positions
                c = torch.nan_to_num(conf[b], nan=-1.0)
                expected = scored[b] & (c >= threshold)
                expected[int(c.argmax())] = True  # and always the most confident one
                assert torch.equal(out.committed[b], expected)
            assert out.t == pytest.approx(masked_before.double().mean().item())
            assert out.s == pytest.approx((out.x == T.MASK_ID).double().mean().item())
            prev = out.x.clone()
        assert not (s.x == T.MASK_ID).any() and steps <= 6 and s.k == steps
        if threshold == 0.0:  # everything of a block at once: one step per block
            assert steps == (1 if block is None else 2)


def test_threshold_trajectory_has_the_steps_taken_and_a_step_budget(masked_model):
    low = masked.VARIANT.trajectory(masked_model, 6, 5, strategy="threshold", threshold=0.3)
    assert low.n_steps == len(low.records) < 6  # a low threshold commits several units in one pass
    assert [r.step for r in low.records] == list(range(1, low.n_steps + 1)) and T.MASK_ID not in low.final
    assert low.records[-1].s == 0.0 and low.records[0].t == 1.0
    assert sum(len(r.committed) for r in low.records) == 6
    # a budget of T steps: the last one commits everything left
    capped = masked.VARIANT.trajectory(masked_model, 2, 5, strategy="threshold", threshold=1.5)
    assert [len(r.committed) for r in capped.records] == [1, 5] and T.MASK_ID not in capped.final
    back = Trajectory.from_json(low.to_json())
    assert back == low and back.settings["threshold"] == 0.3
    with pytest.raises(ValueError, match="threshold"):
        MaskedSamplerConfig(strategy="threshold", threshold=float("nan"))
    with pytest.raises(ValueError, match="threshold"):
        MaskedSamplerConfig(strategy="threshold", threshold=-0.1)


def test_threshold_branches_continue_from_step_k(masked_model):
    from dlm_core.sampling.branching import Edits

    parent = masked.VARIANT.trajectory(masked_model, 6, 2, strategy="threshold", threshold=0.95)
    k = 2
    child = masked.VARIANT.branch(masked_model, parent, k, Edits(pins={5: T.ID["[PAD]"]}), seed=4)
    assert child.records[:k] == parent.records[:k]
    assert child.final[5] == T.ID["[PAD]"] and T.MASK_ID not in child.final
    assert [r.step for r in child.records] == list(range(1, child.n_steps + 1))
    done = [i for i, u in enumerate(parent.tokens_at(k)) if u != T.MASK_ID and i != 5]
    again = masked.VARIANT.branch(masked_model, parent, k, Edits(remask=(done[0],)), seed=4)
    assert again.commit_step()[done[0]] > k and T.MASK_ID not in again.final


def test_cli_sample_with_the_threshold_strategy():
    from conftest import run_cli

    p = run_cli("sample", "--variant", "masked", "--n", "20", "--strategy", "threshold", "--threshold", "2",
                "--seed", "4", "--temperature", "0.8")
    q = run_cli("sample", "--variant", "masked", "--n", "20", "--strategy", "low-confidence", "--seed", "4",
                "--temperature", "0.8")
    assert p.stdout == q.stdout and len(p.stdout.splitlines()) == 20
    bad = run_cli("sample", "--variant", "masked", "--strategy", "threshold", "--threshold", "-1", check=False)
    assert bad.returncode == 2 and "threshold" in bad.stderr and "Traceback" not in bad.stderr
