"""Real-model adapter on tiny transformers models saved locally (no network needed)."""

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli
from tiny_models import make_bert, make_gpt2, make_modernbert, make_remote_code

from dlm_core.sampling.masked_sampler import MaskedSamplerConfig
from dlm_core.trajectory import Trajectory
from dlm_core.variants import hf_adapter as H


@pytest.fixture(scope="module")
def bert_path(tmp_path_factory):
    return make_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def bert(bert_path):
    return H.load(bert_path)


@pytest.mark.parametrize("make", [make_bert, make_modernbert])
def test_tiny_models_load_from_a_local_path_and_generate(make, tmp_path):
    lm = H.load(make(tmp_path / "m"))
    assert lm.mask_id == lm.tokenizer.mask_token_id and lm.device.type == "cpu"
    x = torch.tensor([[2, 5, lm.mask_id, 6, 3]])
    assert lm(x).shape == (1, 5, lm.vocab_size)
    traj = H.generate(lm, "the cat", 8, MaskedSamplerConfig(steps=4, strategy="random", block_length=4, top_k=5))
    assert traj.n_steps == 4 and len(traj.text_per_step) == 4
    assert lm.mask_id not in traj.final and traj.block_length == 4
    # top-k only (not the whole vocabulary), at the masked positions (the prompt has no prediction)
    first = traj.records[0].topk_ids
    assert all(len(first[i]) == 5 for i in range(traj.gen_start, traj.gen_start + 8))
    assert all(first[i] == [] for i in range(traj.gen_start))
    back = Trajectory.from_json(traj.to_json())
    assert back.final == traj.final and back.token_text(traj.final[3]) == lm.token_text(traj.final[3])


def reference_llada(model_fn, x, mask_id, gen_start, gen_length, steps, block_length, cfg_scale):
    """A plain, independent implementation of the fixed-count low-confidence sampler at temperature 0."""
    x = x.clone()
    prompt = x != mask_id
    n_blocks = gen_length // block_length
    spb = steps // n_blocks
    for b in range(n_blocks):
        hi = gen_start + (b + 1) * block_length
        n = int((x[0, gen_start + b * block_length: hi] == mask_id).sum())
        counts = [n // spb + (1 if j < n % spb else 0) for j in range(spb)]
        for j in range(spb):
            masked = x == mask_id
            logits = model_fn(x).double()
            if cfg_scale > 0:
                un = model_fn(torch.where(prompt, torch.full_like(x, mask_id), x)).double()
                logits = un + (cfg_scale + 1) * (logits - un)
            logits[..., mask_id] = float("-inf")
            x0 = logits.argmax(-1)
            conf = F.softmax(logits, -1).gather(-1, x0[..., None])[..., 0]
            conf[:, hi:] = float("-inf")
            conf = torch.where(masked, conf, torch.full_like(conf, float("-inf")))
            idx = torch.topk(conf[0], counts[j]).indices
            x[0, idx] = x0[0, idx]
    return x


@pytest.mark.parametrize("gen_length, steps, block, cfg", [(8, 8, 8, 0.0), (8, 4, 4, 0.0), (12, 6, 4, 0.0),
                                                           (8, 4, 4, 1.5)])
def test_sampler_equals_an_independent_implementation(bert, gen_length, steps, block, cfg):
    config = MaskedSamplerConfig(steps=steps, strategy="low-confidence", temperature=0.0, block_length=block,
                           cfg_scale=cfg, top_k=3)
    traj = H.generate(bert, "the cat sat", gen_length, config)
    canvas = H.build_canvas(bert, "the cat sat", gen_length)
    ref = reference_llada(bert, canvas.ids, bert.mask_id, canvas.gen_start, gen_length, steps, block, cfg)
    assert traj.final == ref[0].tolist()


def test_generation_streams_each_step_as_it_is_computed(bert):
    seen = []

    def on_step(rec, sampler, text):
        seen.append((rec.step, sampler.k))
        assert len(text.split()) >= 1

    H.generate(bert, "hello", 6, MaskedSamplerConfig(steps=3, strategy="low-confidence"), on_step=on_step)
    assert seen == [(1, 1), (2, 2), (3, 3)]  # each record arrives before the next step runs


def test_chat_template_is_applied_when_present(bert_path, tmp_path):
    lm = H.load(bert_path)
    lm.tokenizer.chat_template = "{% for m in messages %}[CLS] {{ m['content'] }} [SEP]{% endfor %}"
    lm.has_chat_template = True
    canvas = H.build_canvas(lm, "the dog", 4)
    expected = lm.tokenizer.apply_chat_template([{"role": "user", "content": "the dog"}], add_generation_prompt=True,
                                                tokenize=True)
    expected = list(expected["input_ids"] if hasattr(expected, "keys") else expected)
    assert canvas.ids[0, :canvas.gen_start].tolist() == expected
    plain = H.build_canvas(lm, "the dog", 4, use_chat_template=False)
    assert plain.ids[0, : plain.gen_start].tolist() == lm.tokenizer("the dog")["input_ids"][:-1]


def test_error_unknown_hub_id_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(H.ModelLoadError, match="not available offline"):
        H.load("someone-who-does-not-exist/no-such-model")


def test_error_unknown_local_path(tmp_path):
    with pytest.raises(H.ModelLoadError, match="No folder"):
        H.load(tmp_path / "missing" / "model")


def test_error_model_without_mask_token(tmp_path):
    with pytest.raises(H.ModelLoadError, match="no mask token"):
        H.load(make_gpt2(tmp_path / "gpt2"))


def test_error_remote_code_needs_the_opt_in(tmp_path):
    path = make_remote_code(tmp_path / "remote")
    with pytest.raises(H.ModelLoadError, match="trust_remote_code") as e:
        H.load(path)
    assert "only if you trust it" in str(e.value)  # and the checkpoint's code never ran (it would raise)


def test_error_prompt_plus_length_too_long(bert):
    with pytest.raises(ValueError, match="positions"):
        H.build_canvas(bert, "the cat sat on the mat", 100)


def test_error_blocks_and_steps_must_divide(bert):
    with pytest.raises(ValueError, match="divisible by the block length"):
        H.generate(bert, "the", 10, MaskedSamplerConfig(steps=4, block_length=4))
    with pytest.raises(ValueError, match="divisible by the number of blocks"):
        H.generate(bert, "the", 8, MaskedSamplerConfig(steps=3, block_length=4))


def test_cli_generate_text_json_and_errors(bert_path, monkeypatch):
    p = run_cli("generate", "--model", str(bert_path), "--prompt", "the cat", "--gen-length", "8", "--steps", "4",
                "--block-length", "4", "--strategy", "low-confidence", "--temperature", "0", "--seed", "1")
    assert p.stdout.strip() and p.returncode == 0
    j = json.loads(run_cli("generate", "--model", str(bert_path), "--prompt", "the cat", "--gen-length", "8",
                           "--steps", "4", "--block-length", "8", "--strategy", "margin", "--cfg", "1.0",
                           "--json").stdout)
    assert j["variant"] == "real" and len(j["records"]) == 4 and j["settings"]["cfg_scale"] == 1.0
    bad = run_cli("generate", "--model", str(bert_path), "--prompt", "x", "--gen-length", "10", "--steps", "4",
                  "--block-length", "4", check=False)
    assert bad.returncode == 2 and "divisible" in bad.stderr and "Traceback" not in bad.stderr
    bad = run_cli("generate", "--model", "nobody/none", "--prompt", "x", "--gen-length", "8", "--steps", "4",
                  check=False)
    assert bad.returncode == 2 and "not available offline" in bad.stderr


@pytest.mark.parametrize("tau", [0.0, 1.0])
@pytest.mark.parametrize("gen_length, block, cfg", [(8, 8, 0.0), (12, 4, 0.0), (8, 4, 1.5)])
def test_threshold_above_every_confidence_equals_low_confidence_with_one_step_per_token(bert, tau, gen_length,
                                                                                        block, cfg):
    """Threshold decoding with a threshold above 1 commits one token per step: token for token the
    low-confidence sampler with T = the generation length (the same random stream at tau > 0)."""
    common = dict(temperature=tau, block_length=block, cfg_scale=cfg, seed=3, top_k=3)
    a = H.generate(bert, "the cat sat", gen_length, MaskedSamplerConfig(steps=gen_length, strategy="threshold",
                                                                        threshold=1.01, **common))
    b = H.generate(bert, "the cat sat", gen_length, MaskedSamplerConfig(steps=gen_length, strategy="low-confidence",
                                                                        **common))
    assert a.n_steps == b.n_steps == gen_length and [len(r.committed) for r in a.records] == [1] * gen_length
    assert a.final == b.final and a.text_per_step == b.text_per_step
    assert [r.committed for r in a.records] == [r.committed for r in b.records]
    if tau == 0:  # and so the independent reference implementation too
        canvas = H.build_canvas(bert, "the cat sat", gen_length)
        ref = reference_llada(bert, canvas.ids, bert.mask_id, canvas.gen_start, gen_length, gen_length, block, cfg)
        assert a.final == ref[0].tolist()


def test_threshold_decoding_on_a_real_model_stops_when_everything_is_written(bert):
    traj = H.generate(bert, "the cat", 12, MaskedSamplerConfig(steps=12, strategy="threshold", threshold=0.0,
                                                               block_length=4, temperature=0.0))
    assert traj.n_steps == 3 and [len(r.committed) for r in traj.records] == [4, 4, 4]  # a block per pass
    assert bert.mask_id not in traj.final and len(traj.text_per_step) == 3


def test_cli_generate_with_the_threshold_strategy(bert_path):
    args = ["generate", "--model", str(bert_path), "--prompt", "the cat", "--gen-length", "8", "--temperature", "1",
            "--seed", "2", "--block-length", "4"]
    thr = run_cli(*args, "--strategy", "threshold", "--threshold", "1.5")  # --steps: the generation length
    low = run_cli(*args, "--strategy", "low-confidence", "--steps", "8")
    assert thr.stdout == low.stdout and thr.stdout.strip()
    j = json.loads(run_cli(*args, "--strategy", "threshold", "--threshold", "0", "--json").stdout)
    assert j["settings"]["strategy"] == "threshold" and len(j["records"]) == 2  # one pass per block
