"""The stepwise fixed-count sampler: counts, blocks, determinism, records, errors."""

import json

import pytest
import torch

from dlm_core import masked
from dlm_core import toy_language as T
from dlm_core.masked_sampler import MaskedSampler, MaskedSamplerConfig, plan_blocks, spread_counts
from dlm_core.sampler import run_trajectory
from dlm_core.trajectory import Trajectory


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
