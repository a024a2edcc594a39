"""The block cache (sampling/block_cache.py, variants/hf_cache.py) on tiny BERTs saved locally."""

import json

import pytest
import torch
from tiny_models import make_bert

from dlm_core.sampling.masked_sampler import MaskedSamplerConfig
from dlm_core.variants import hf_adapter as H
from dlm_core.variants import hf_cache


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return H.load(make_bert(tmp_path_factory.mktemp("bert"), seed=3, init_range=0.3))


def test_layer_by_layer_pass_equals_transformers_forward(bert):
    x = torch.tensor([[2, 9, bert.mask_id, 11, bert.mask_id, 7, 3], [2, 5, 6, bert.mask_id, 8, 12, 3]])
    ours = hf_cache.BertKV(bert.model).forward(x, 0, x.shape[1], store=False)
    theirs = bert.model(input_ids=x, attention_mask=torch.ones_like(x)).logits
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_a_partial_pass_on_an_unchanged_canvas_equals_the_full_pass(bert):
    """Keys and values kept from a pass of the same canvas are exactly what a full pass recomputes."""
    x = torch.tensor([[2, 9, 10, bert.mask_id, bert.mask_id, bert.mask_id, 3]])
    kv = hf_cache.BertKV(bert.model)
    full = kv.forward(x, 0, 7, store=True)
    assert torch.allclose(kv.forward(x, 3, 5, store=False), full[:, 3:5], atol=1e-5)
    with pytest.raises(ValueError, match="stores the cache"):
        kv.forward(x, 3, 5, store=True)


def _run(lm, cache, strategy="low-confidence", tau=0.0, prompt="the cat sat"):
    cfg = MaskedSamplerConfig(steps=8, strategy=strategy, temperature=tau, block_length=4, cache=cache, top_k=3,
                              seed=5, threshold=0.2)
    return H.generate(lm, prompt, 16, cfg)


@pytest.fixture(scope="module")
def block_causal(tmp_path_factory):
    lm = H.load(make_bert(tmp_path_factory.mktemp("bert_bc"), seed=4, init_range=0.3))
    gen_start = H.build_canvas(lm, "the cat sat", 16).gen_start
    n = gen_start + 16 + 1  # + [SEP]
    lm.block_causal = hf_cache.block_ids(n, gen_start, 16, 4)
    return lm


@pytest.mark.parametrize("strategy,tau", [("low-confidence", 0.0), ("low-confidence", 1.0), ("threshold", 0.0),
                                          ("margin", 0.0)])
@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_on_a_block_causal_model_the_cache_writes_the_uncached_text_token_for_token(block_causal, strategy, tau, cache):
    off = _run(block_causal, "off", strategy, tau)
    on = _run(block_causal, cache, strategy, tau)
    assert on.final == off.final and [r.tokens for r in on.records] == [r.tokens for r in off.records]
    assert all(r.recomputed is None for r in off.records)


def test_on_bert_the_cache_is_an_approximation_that_changes_the_text(bert):
    """BERT is bidirectional: kept keys no longer see the later tokens (what the block-causal test rules out)."""
    assert _run(bert, "off").final != _run(bert, "prefix").final


def test_each_step_records_the_positions_it_recomputed(bert):
    prefix, dual = _run(bert, "prefix"), _run(bert, "dual")
    start, n = prefix.gen_start, prefix.length
    for traj, end in ((prefix, lambda lo: n), (dual, lambda lo: lo + 4)):
        for r in traj.records:  # 2 steps per block: a full pass, then the block (and, prefix, what follows)
            block = (r.step - 1) // 2
            lo = start + 4 * block
            want = list(range(n)) if (r.step - 1) % 2 == 0 else list(range(lo, end(lo)))
            assert r.recomputed == (want if r.model_called else [])


def test_the_cache_computes_fewer_positions(bert):
    canvas = H.build_canvas(bert, "the cat sat", 16)
    counts = {}
    for cache in ("off", "prefix", "dual"):
        cfg = MaskedSamplerConfig(steps=8, temperature=0.0, block_length=4, cache=cache)
        sampler = H.MaskedSampler(bert, cfg, canvas.ids, gen_start=canvas.gen_start, gen_length=16)
        while not sampler.done:
            sampler.step()
        counts[cache] = (sampler.model_calls, sampler.positions_computed)
    n = canvas.ids.shape[1]
    assert counts["off"] == (8, 8 * n)
    # per block: one full pass, then (prefix) the block and what follows it, (dual) the block alone
    assert counts["prefix"] == (8, 4 * n + sum(n - (canvas.gen_start + 4 * b) for b in range(4)))
    assert counts["dual"] == (8, 4 * n + 4 * 4)


def test_clear_errors_for_settings_the_cache_cannot_serve(bert):
    with pytest.raises(ValueError, match="guidance"):
        MaskedSamplerConfig(cache="prefix", cfg_scale=1.0)
    with pytest.raises(ValueError, match="unknown block cache"):
        MaskedSamplerConfig(cache="all")

    class NoCache:
        mask_id, vocab_size = 4, 20

    with pytest.raises(ValueError, match="cannot keep keys and values"):
        H.MaskedSampler(NoCache(), MaskedSamplerConfig(steps=2, cache="prefix"), torch.full((1, 4), 4))


def test_the_stage_data_carries_the_recomputed_positions(bert):
    from dlm_core.render.stage import stage_data
    from dlm_core.sampling.block_cache import cache_note

    off, dual = _run(bert, "off"), _run(bert, "dual")
    assert stage_data(off)["recomputed"] is None
    marks = stage_data(dual)["recomputed"]
    assert len(marks) == dual.n_steps + 1 and marks[0] == ""
    for mask, r in zip(marks[1:], dual.records):
        assert [i for i, c in enumerate(mask) if c == "1"] == r.recomputed
    assert "Block cache (dual): 8 forward passes, 4 of them full" in cache_note(dual)
    assert cache_note(off).startswith("Block cache off: each of the 8 forward passes")


def test_cli_generate_with_the_cache_and_its_errors(tmp_path):
    from conftest import run_cli
    from tiny_models import make_modernbert

    bert_path = make_bert(tmp_path / "bert", seed=3, init_range=0.3)
    j = json.loads(run_cli("generate", "--model", str(bert_path), "--prompt", "the cat", "--gen-length", "8",
                           "--steps", "4", "--block-length", "4", "--cache", "dual", "--json").stdout)
    assert j["settings"]["cache"] == "dual" and [len(r["recomputed"]) for r in j["records"]][1] == 4
    other = make_modernbert(tmp_path / "modernbert")
    bad = run_cli("generate", "--model", str(other), "--prompt", "the cat", "--gen-length", "8", "--steps", "4",
                  "--cache", "prefix", check=False)
    assert bad.returncode == 2 and "cannot keep keys and values" in bad.stderr and "Traceback" not in bad.stderr
