"""Units written mid-flight (dlm_core.studies.mid_flight): the exact outcome distribution of the masked sampler
from a canvas, against two independent computations, and the lessons' numbers and sentences."""

from __future__ import annotations

import pytest
import torch

from dlm_core.studies import infill, mid_flight, training
from dlm_core.studies.guidance import language_log_probs
from dlm_core.toy_language import MASK_ID
from dlm_core.variants.masked import log_probs_fn


@pytest.fixture(scope="module")
def models():
    torch.set_num_threads(1)
    return {v: training.load_checkpoint(training.default_checkpoint(v))[0] for v in ("masked", "uniform")}


def test_a_perfect_model_fills_a_canvas_with_the_exact_conditional():
    canvas = mid_flight.canvas_of(mid_flight.PREFILL)
    pins = {i: u for i, u in enumerate(canvas) if u != MASK_ID}
    got = mid_flight.exact_outcomes(language_log_probs, canvas)
    assert got == pytest.approx(infill.language_conditional(pins), abs=1e-12)


def test_the_exact_outcomes_agree_with_the_infill_dynamic_programme(models):
    canvas = mid_flight.canvas_of(mid_flight.PREFILL)
    pins = {i: u for i, u in enumerate(canvas) if u != MASK_ID}
    got = mid_flight.exact_outcomes(log_probs_fn(models["masked"]), canvas)
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-9)  # every completion of the free positions
    other = infill.model_infill_exact(models["masked"], pins)
    assert {x: got[x] for x in other.probs} == pytest.approx(other.probs, abs=1e-9)


def test_the_article_canvas_has_no_valid_completion_and_the_numbers_say_so(models):
    r = mid_flight.study(models["masked"], models["uniform"], mid_flight.MidFlightSettings(n=400))
    assert r["masked"]["valid"] == 0.0 and sum(r["masked"]["by_reason"].values()) == pytest.approx(1.0, abs=1e-9)
    assert r["masked"]["by_reason"]["agreement"] > 0  # "our dog are your s [PAD]" is among them
    assert 0 <= r["uniform"]["valid"] <= 1 and r["uniform"]["valid_se"] > 0
    assert r["prefill"]["model_after"] > r["prefill"]["model_before"] + 3 * r["prefill"]["model_before_se"]
    assert r["prefill"]["language_before"] == pytest.approx(1 / 12, abs=1e-12)  # "you" opens 1/4 x 1/3
    text = mid_flight.error_summary(r) + mid_flight.prefill_summary(r)
    assert f"{r['uniform']['valid']:.1%}" in text and f"{r['prefill']['model_after']:.1%}" in text
