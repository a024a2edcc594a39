"""The shipped masked checkpoint, the CLI, training and checkpoint files."""

import json
import math

import numpy as np
import pytest
import torch
from conftest import run_cli

from dlm_core import toy_language as T
from dlm_core.studies import training
from dlm_core.variants import masked


@pytest.fixture(scope="module")
def eval_json():
    # --quick samples less; the exact numbers asserted here are the same with or without it
    return json.loads(run_cli("eval", "--variant", "masked", "--json", "--quick").stdout)


def test_eval_json_has_exact_bounds_in_order(eval_json):
    H = eval_json["entropy_bits_per_unit"]
    assert H == pytest.approx(T.entropy_bits_per_unit())
    assert eval_json["support_size"] == T.support_size()
    # NELBO >= NLL >= H, and the NELBO is within 0.3 % of the entropy (the training target)
    assert eval_json["nelbo_bits_per_unit"] >= eval_json["details"]["nll_bits_per_unit"] >= H
    assert eval_json["nelbo_bits_per_unit"] <= 1.003 * H
    assert set(eval_json["by_steps"]) == {"1", "2", "3", "6", "12", "24", "100"}
    v = [eval_json["by_steps"][k]["validity_exact"] for k in ("1", "2", "3", "6", "12", "24", "100")]
    assert all(0 <= a <= 1 for a in v) and v == sorted(v)  # more steps, fewer parallel-decoding errors


def test_cli_random_order_samples_are_valid_and_match_the_exact_mass(eval_json):
    out = run_cli("sample", "--variant", "masked", "--n", "2000", "--steps", "6", "--strategy", "random",
                  "--seed", "7").stdout
    lines = out.splitlines()
    assert len(lines) == 2000
    assert all(len(line.split(" ")) == 6 for line in lines)
    m = T.sample_metrics([T.encode(line) for line in lines])
    assert m.validity >= 0.97
    # one unit per step in random order samples p_mix exactly: its valid mass is exact
    exact = eval_json["details"]["random_order_validity"]
    se = math.sqrt(exact * (1 - exact) / 2000)
    assert abs(m.validity - exact) <= 3 * se


def test_cli_ancestral_samples_match_the_exact_valid_mass(eval_json):
    out = run_cli("sample", "--variant", "masked", "--n", "4000", "--steps", "6", "--strategy", "ancestral",
                  "--seed", "3").stdout
    m = T.sample_metrics([T.encode(line) for line in out.splitlines()])
    exact = eval_json["by_steps"]["6"]["validity_exact"]
    assert abs(m.validity - exact) <= 3 * math.sqrt(exact * (1 - exact) / 4000)


def test_cli_sample_options_and_errors():
    p = run_cli("sample", "--variant", "masked", "--n", "5", "--steps", "2", "--strategy", "margin",
                "--block-length", "3", "--temperature", "0.5", "--seed", "1")
    assert len(p.stdout.splitlines()) == 5 and p.stderr == ""
    bad = run_cli("sample", "--variant", "masked", "--n", "5", "--steps", "3", "--block-length", "3", check=False)
    assert bad.returncode == 2 and "divisible" in bad.stderr and bad.stdout == ""
    bad = run_cli("eval", "--variant", "masked", "--checkpoint", "/nonexistent/ckpt", check=False)
    assert bad.returncode == 2 and "no checkpoint" in bad.stderr


def test_cli_train_writes_a_loadable_checkpoint(tmp_path):
    out = tmp_path / "ck"
    p = run_cli("train", "--variant", "masked", "--steps", "30", "--seed", "3", "--out", str(out))
    info = json.loads(p.stdout)
    meta = json.loads((out / "checkpoint.json").read_text())
    assert meta["training"]["steps"] == 30 and meta["seed"] == 3 and meta["steps_done"] == 30
    assert meta["wall_time_s"] > 0 and "nelbo_bits_per_unit" in meta["metrics"]
    assert info["nelbo_bits_per_unit"] == pytest.approx(meta["metrics"]["nelbo_bits_per_unit"])
    # an untrained-ish model is far from the entropy; the evaluation says so
    assert meta["metrics"]["nelbo_bits_per_unit"] > 1.1 * T.entropy_bits_per_unit()
    s = run_cli("sample", "--variant", "masked", "--n", "3", "--checkpoint", str(out))
    assert len(s.stdout.splitlines()) == 3


def test_shipped_metadata_describes_the_checkpoint():
    meta = json.loads((training.default_checkpoint("masked") / "checkpoint.json").read_text())
    for key in ("variant", "training", "seed", "wall_time_s", "metrics", "saved_at"):
        assert key in meta
    assert meta["variant"] == "masked" and meta["metrics"]["nelbo_bits_per_unit"] <= 1.003 * T.entropy_bits_per_unit()


def test_training_callback_sees_every_step_and_can_stop():
    seen = []

    def cb(step, loss, model):
        seen.append((step, loss))
        return step < 7

    r = training.train(training.TrainConfig(steps=50, batch_size=32), callback=cb)
    assert r.stopped and r.steps_done == 7 and [s for s, _ in seen] == list(range(1, 8))
    assert all(np.isfinite(v) for _, v in seen)


def test_save_load_round_trip_and_corrupt_checkpoints(tmp_path):
    r = training.train(training.TrainConfig(steps=3, batch_size=16))
    out = training.save_checkpoint(r, tmp_path / "a")
    model, meta = training.load_checkpoint(out)
    z = torch.full((2, 6), T.MASK_ID)
    assert torch.equal(model(z), r.model(z))
    (out / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(training.CheckpointError, match="corrupt"):
        training.load_checkpoint(out)
    out2 = training.save_checkpoint(r, tmp_path / "b")
    (out2 / "checkpoint.json").write_text("{ broken")
    with pytest.raises(training.CheckpointError, match="not a valid checkpoint"):
        training.load_checkpoint(out2)
    out3 = training.save_checkpoint(r, tmp_path / "c")
    meta = json.loads((out3 / "checkpoint.json").read_text())
    meta["training"]["d_model"] = 32
    (out3 / "checkpoint.json").write_text(json.dumps(meta))
    with pytest.raises(training.CheckpointError, match="do not match"):
        training.load_checkpoint(out3)


def test_model_never_predicts_mask(masked_model):
    lm = masked.ToyMaskedLM(masked_model)
    logits = lm(torch.full((1, 6), T.MASK_ID))
    assert logits.shape[-1] == T.V + 1 and torch.isinf(logits[..., T.MASK_ID]).all()
