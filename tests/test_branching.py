"""Pins, re-masks and branches (dlm_core/branching.py) for the three toy variants and a real model."""

import pytest
import torch
from tiny_models import make_bert

from dlm_core import trajectory_file
from dlm_core.render.cells import display_tokens
from dlm_core.sampling.branching import Edits, describe
from dlm_core.sampling.masked_sampler import MaskedSamplerConfig
from dlm_core.studies import training
from dlm_core.toy_language import ID, MASK_ID
from dlm_core.trajectory import Trajectory
from dlm_core.variants import hf_adapter as H
from dlm_core.variants.real import VARIANT as REAL
from dlm_core.variants.registry import VARIANTS

NAMES = list(VARIANTS)


@pytest.fixture(scope="module")
def models():
    return {name: training.load_checkpoint(training.default_checkpoint(name))[0] for name in NAMES}


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return H.load(make_bert(tmp_path_factory.mktemp("bert")))


def options(name):
    """Settings that make every variant's pins and branches non-trivial (masked: several strategies)."""
    return [{"strategy": s} for s in ("ancestral", "random", "low-confidence")] if name == "masked" else [{}]


@pytest.mark.parametrize("name", NAMES)
def test_a_pinned_position_never_changes_in_any_sample(models, name):
    v = VARIANTS[name]
    pins = {1: ID["dog"], 5: ID["[PAD]"]}
    for opts in options(name):
        for steps in (max(3, v.min_steps), 6):  # an autoregressive model needs a step per unit it writes
            sampler = v.make_sampler(models[name], v.sampler_config(steps, 11, pins=pins, **opts), batch=64)
            seen = [sampler.x.clone()]
            while not sampler.done:
                seen.append(sampler.step().x.clone())
            for x in seen:  # from the first state to the sample, in every sequence
                assert (x[:, 1] == ID["dog"]).all() and (x[:, 5] == ID["[PAD]"]).all(), (name, opts, steps)
            free = torch.stack(seen)[:, :, [0, 2, 3, 4]]
            assert (free[-1] != free[0]).any()  # the other positions did move


@pytest.mark.parametrize("name", NAMES)
def test_a_branch_shares_the_first_k_steps_and_holds_its_pins_after(models, name):
    v = VARIANTS[name]
    for opts in options(name):
        parent = v.trajectory(models[name], None, 3, **opts)
        for k in (0, 2, parent.n_steps - 1):
            child = v.branch(models[name], parent, k, Edits(pins={2: ID["is"]}), seed=9)
            assert child.records[:k] == parent.records[:k]  # the same records, not only the same tokens
            assert all(child.tokens_at(j) == parent.tokens_at(j) for j in range(k + 1))
            # an autoregressive model writes one unit per step: a pin on a position it has not reached saves one
            n_steps = parent.n_steps - (v.family == "autoregressive" and parent.tokens_at(k)[2] == v.mask_id)
            assert [r.step for r in child.records] == list(range(1, 1 + n_steps))
            assert child.branch["from_step"] == k and child.branch["edited"][2] == ID["is"]
            assert all(r.tokens[2] == ID["is"] for r in child.records[k:])
            assert all(display_tokens(child, j)[2] == ID["is"] for j in range(k + 1, child.n_steps + 1))  # as drawn
            assert 2 in child.fixed and describe(child) == f"from step {k}: pos 3 = is"


def test_remasking_makes_a_position_masked_and_it_is_filled_again(models):
    v = VARIANTS["masked"]
    for strategy in ("low-confidence", "random", "ancestral"):
        for block in ((None, 3) if strategy != "ancestral" else (None,)):
            parent = v.trajectory(models["masked"], 6, 4, strategy=strategy, block_length=block)
            k = 4
            done = [i for i, u in enumerate(parent.tokens_at(k)) if u != MASK_ID]
            assert done, "the parent has committed something by step 4"
            child = v.branch(models["masked"], parent, k, Edits(remask=(done[0],)), seed=1)
            assert child.branch["edited"][done[0]] == MASK_ID  # masked when the branch's next step starts
            assert MASK_ID not in child.final  # ... and filled again by the end
            assert child.commit_step()[done[0]] > k
            commits = sum(len(r.committed) for r in child.records[k:])
            assert commits == parent.tokens_at(k).count(MASK_ID) + 1  # everything masked is committed once


def test_a_pinned_position_cannot_also_be_remasked_and_edits_are_checked(models):
    v = VARIANTS["masked"]
    parent = v.trajectory(models["masked"], 6, 0)
    with pytest.raises(ValueError, match="both pinned and re-masked"):
        Edits(pins={1: 3}, remask=(1,))
    with pytest.raises(ValueError, match="outside the sequence"):
        v.branch(models["masked"], parent, 2, Edits(pins={9: 3}), seed=0)
    with pytest.raises(ValueError, match="step 6 is the end"):
        v.branch(models["masked"], parent, 6, Edits(pins={1: 3}), seed=0)
    with pytest.raises(ValueError, match="cannot be pinned"):
        v.branch(models["masked"], parent, 2, Edits(pins={1: MASK_ID}), seed=0)


def test_releasing_a_pin_lets_the_position_move(models):
    v = VARIANTS["uniform"]
    parent = v.trajectory(models["uniform"], 24, 2, x_init=None, pins={0: ID["we"]})
    assert all(r.tokens[0] == ID["we"] for r in parent.records)
    moved = False
    for seed in range(6):
        child = v.branch(models["uniform"], parent, 2, Edits(pins={}), seed=seed)
        assert child.branch["released"] == [0] and 0 not in child.fixed
        moved |= any(r.tokens[0] != ID["we"] for r in child.records[2:])
    assert moved


@pytest.mark.parametrize("name", NAMES)
def test_branches_export_and_import(models, name):
    v = VARIANTS[name]
    parent = v.trajectory(models[name], None, 5)
    remask = () if v.family == "autoregressive" else (3,)  # a written unit of an AR model is final
    child = v.branch(models[name], parent, 1, Edits(pins={0: ID["our"]}, remask=remask), seed=2, label="b1")
    back = trajectory_file.load(child.to_json())
    assert back.to_dict() == child.to_dict() and back.branch["label"] == "b1"
    broken = child.to_dict()
    broken["branch"] = {**broken["branch"], "from_step": 99}
    with pytest.raises(ValueError, match="parting step"):
        Trajectory.from_dict(broken).check()
    broken["branch"] = {**child.branch, "pins": [[0, 999]]}
    with pytest.raises(ValueError, match="edits name"):
        Trajectory.from_dict(broken).check()


def test_a_real_model_branch(bert):
    parent = H.generate(bert, "the cat", 8, MaskedSamplerConfig(steps=8, strategy="low-confidence", top_k=3))
    g = parent.gen_start
    k = 5
    tok = next(i for i in range(5, 40) if i != bert.mask_id and i not in parent.final)
    committed = [i for i in range(g, g + 8) if parent.tokens_at(k)[i] != bert.mask_id]
    child = REAL.branch(bert, parent, k, Edits(pins={g: tok}, remask=(committed[-1],)), seed=3)
    assert child.records[:k] == parent.records[:k] and child.text_per_step[:k] == parent.text_per_step[:k]
    assert len(child.text_per_step) == child.n_steps == 8
    assert all(r.tokens[g] == tok for r in child.records[k:]) and bert.mask_id not in child.final
    assert child.branch["edited"][committed[-1]] == bert.mask_id and child.commit_step()[committed[-1]] > k
    assert child.final[:g] == parent.final[:g]  # the prompt is untouched
    assert trajectory_file.load(child.to_json()).to_dict() == child.to_dict()
    with pytest.raises(ValueError, match="in the prompt"):
        REAL.branch(bert, parent, k, Edits(pins={0: tok}), seed=3)
