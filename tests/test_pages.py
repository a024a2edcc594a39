"""The pages, driven with Streamlit's AppTest (no browser)."""

from pathlib import Path

import pytest  # noqa: I001
from streamlit.testing.v1 import AppTest

from dlm_core import toy_language as T

TIMEOUT = 60
APP = str(Path(__file__).resolve().parent.parent / "app.py")


def open_page(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if query:
        at.query_params.update(query)
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def button(at, key):
    return next(b for b in at.button if b.key == key)


def shown_units(at) -> list[str]:
    """The units of the big sequence view (first markdown that holds chips)."""
    import re

    for md in at.markdown:
        if "font-size:1.6rem" in md.value:
            return re.findall(r">([^<]+)</span>", md.value)
    raise AssertionError("no sequence view on the page")


def test_home_renders_the_exact_numbers():
    at = open_page("pages/views/home.py")
    values = {m.label: m.value for m in at.metric}
    assert values["Sentences in the language"] == str(T.support_size())
    assert f"{T.entropy_bits_per_unit():.4f}" in values["Exact entropy H"]
    assert any("Wheel of Fortune" in md.value for md in at.markdown)


def test_reverse_page_transport_and_slider():
    at = open_page("pages/views/reverse.py")
    slider = at.slider(key="rev_step")
    assert slider.value == 6 and slider.max == 6  # opens on the finished sentence
    assert "[MASK]" not in shown_units(at)
    button(at, "rev_first").click().run()
    assert at.slider(key="rev_step").value == 0 and shown_units(at) == ["[MASK]"] * 6
    button(at, "rev_next").click().run()
    button(at, "rev_next").click().run()
    assert at.slider(key="rev_step").value == 2
    assert shown_units(at).count("[MASK]") == 4  # low-confidence, 6 steps: one unit per step
    button(at, "rev_prev").click().run()
    assert at.slider(key="rev_step").value == 1
    at.slider(key="rev_step").set_value(5).run()
    assert not at.exception and shown_units(at).count("[MASK]") == 1
    button(at, "rev_last").click().run()
    assert at.slider(key="rev_step").value == 6


def test_play_advances_and_pause_stops():
    at = open_page("pages/views/reverse.py")
    button(at, "rev_first").click().run()
    button(at, "rev_play").click().run()
    assert at.session_state["rev_playing"] is True
    assert at.slider(key="rev_step").value == 1  # the first frame advanced one step
    assert button(at, "rev_play").label == "Pause"
    button(at, "rev_play").click().run()
    assert at.session_state["rev_playing"] is False and button(at, "rev_play").label == "Play"


def test_strategy_steps_and_blocks_change_the_trajectory():
    at = open_page("pages/views/reverse.py")
    at.selectbox(key="strategy").set_value("ancestral").run()
    assert not at.exception
    at.slider(key="steps").set_value(12).run()
    assert at.slider(key="rev_step").max == 12 and not at.exception
    at.selectbox(key="strategy").set_value("margin").run()
    at.slider(key="steps").set_value(4).run()
    at.selectbox(key="block_length").set_value(3).run()
    assert not at.exception and at.slider(key="rev_step").max == 4
    button(at, "rev_first").click().run()
    button(at, "rev_next").click().run()
    button(at, "rev_next").click().run()
    units = shown_units(at)  # 2 steps per block of 3: the first block is done, the second untouched
    assert "[MASK]" not in units[:3] and units[3:] == ["[MASK]"] * 3
    at.slider(key="steps").set_value(3).run()  # 3 steps cannot be split over 2 blocks
    assert not at.exception and any("divisible" in e.value for e in at.error)


@pytest.mark.parametrize("seed", [0, 1])
def test_settings_come_from_the_url(seed):
    at = open_page("pages/views/reverse.py", {"strategy": "random", "steps": "3", "seed": str(seed)})
    assert at.selectbox(key="strategy").value == "random"
    assert at.slider(key="steps").value == 3 and at.number_input(key="seed").value == seed
    assert at.query_params["strategy"] == ["random"] or at.query_params["strategy"] == "random"


def test_real_model_page_generates_replays_and_reports_errors(tmp_path):
    from tiny_models import make_bert, make_gpt2

    path = make_bert(tmp_path / "bert", max_positions=64)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/views/real.py")
    at.session_state["real_source"] = "Hub id or local path"
    at.session_state["real_custom"] = str(path)
    at.session_state["real_gen_length"] = 8
    at.session_state["real_steps"] = 4
    at.session_state["real_block_length"] = 4
    at.run()
    assert not at.exception, at.exception
    assert any("Generate" in b.label for b in at.button)
    button(at, "real_generate").click().run()
    assert not at.exception, at.exception
    traj = at.session_state["real_traj"]
    assert traj.n_steps == 4 and at.slider(key="rev_real_step").value == 4
    at.slider(key="rev_real_step").set_value(2).run()
    assert not at.exception and at.slider(key="rev_real_step").value == 2
    # an error case: a prompt that does not fit the model's 64 positions
    at.session_state["real_gen_length"] = 200
    at.session_state["real_block_length"] = 200
    at.run()
    button(at, "real_generate").click().run()
    assert not at.exception and any("positions" in e.value for e in at.error)
    # a model without a mask token: a clear message, no traceback
    at.session_state["real_custom"] = str(make_gpt2(tmp_path / "gpt2"))
    at.run()
    assert not at.exception and any("no mask token" in e.value for e in at.error)


def test_train_page_runs_to_completion_and_the_model_is_offered_on_reverse():
    import time

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/views/train.py")
    at.run()
    assert not at.exception
    at.number_input(key="train_steps").set_value(50)
    at.button[0].click()  # the form's submit button
    at.run()
    job = at.session_state["train_job"]
    deadline = time.monotonic() + 120
    while job.running and time.monotonic() < deadline:
        job._thread.join(timeout=1)
    assert job.result is not None and job.result.steps_done == 50 and not job.result.stopped
    at.run()
    assert not at.exception
    assert any("Done after 50 steps" in s.value for s in at.success)
    labels = list(at.session_state["session_models"])
    assert len(labels) == 1 and "masked" in labels[0]
    at.switch_page("pages/views/reverse.py")
    at.run()
    assert labels[0] in at.selectbox(key="model_label").options
    at.selectbox(key="model_label").set_value(labels[0]).run()
    assert not at.exception and at.slider(key="rev_step").max == at.slider(key="steps").value


def test_train_page_stop_in_the_middle():
    import time

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/views/train.py")
    at.run()
    at.number_input(key="train_steps").set_value(5000)
    at.button[0].click()
    at.run()
    job = at.session_state["train_job"]
    while not job.snapshot()["losses"]:
        time.sleep(0.05)
    at.run()
    assert job.running
    next(b for b in at.button if b.key == "train_stop").click().run()
    job._thread.join(timeout=60)
    assert job.result is not None and job.result.stopped and job.result.steps_done < 5000
    at.run()
    assert not at.exception and any("Stopped after" in s.value for s in at.success)


@pytest.mark.parametrize("variant", ["uniform", "gaussian"])
def test_reverse_page_for_uniform_and_gaussian(variant):
    at = open_page("pages/views/reverse.py", {"variant": variant})
    assert at.selectbox(key="variant").value == variant
    assert at.slider(key="rev_step").max == at.slider(key="steps").value == 24
    button(at, "rev_first").click().run()
    assert shown_units(at) and not at.exception
    for _ in range(3):
        button(at, "rev_next").click().run()
    assert at.slider(key="rev_step").value == 3 and not at.exception
    charts = [c for c in at.get("plotly_chart")]
    assert len(charts) >= (4 if variant == "gaussian" else 3)
    if variant == "gaussian":
        at.toggle(key="clamp").set_value(True).run()
        assert not at.exception
    at.slider(key="steps").set_value(6).run()
    assert not at.exception and at.slider(key="rev_step").max == 6


@pytest.mark.parametrize("variant", ["masked", "uniform", "gaussian"])
def test_forward_page_t_slider_corrupts_more_as_t_grows(variant):
    at = open_page("pages/views/forward.py", {"fwd_variant": variant})
    assert at.selectbox(key="fwd_variant").value == variant
    at.slider(key="fwd_t").set_value(0.0).run()
    assert not at.exception
    clean = shown_units(at)
    assert " ".join(clean) == at.selectbox(key="fwd_sentence").value  # t = 0: the sentence itself
    at.slider(key="fwd_t").set_value(1.0).run()
    noisy = shown_units(at)
    assert noisy != clean
    if variant == "masked":
        assert noisy == ["[MASK]"] * 6
    at.selectbox(key="fwd_sentence").set_value("our dog s are your s").run()
    at.slider(key="fwd_t").set_value(0.5).run()
    assert not at.exception and len(at.get("plotly_chart")) == 2
    assert any("How?" in e.label for e in at.expander)


def test_compare_page_opens_on_the_shipped_results_and_recomputes(monkeypatch):
    from dlm_core import compare

    at = open_page("pages/views/compare.py")
    assert len(at.get("plotly_chart")) >= 8
    table = next(md.value for md in at.markdown if md.value.startswith("| variant"))
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == ["masked", "uniform", "gaussian"]
    at.select_slider(key="cmp_T").set_value(6).run()
    assert not at.exception
    # recompute with tiny settings so the test stays fast (the page takes whatever settings it gets)
    monkeypatch.setattr(compare.CompareSettings, "quick", classmethod(
        lambda cls: cls(n_samples=300, n_t=20, steps=(1, 6), strategy_steps=(6,), remdm_etas=(0.0, 0.2))))
    next(b for b in at.button if b.key == "cmp_recompute").click().run()
    assert not at.exception
    assert at.session_state["compare_results"]["settings"]["n_samples"] == 300
    assert at.select_slider(key="cmp_T").options == ["1", "6"]


def test_reverse_page_shows_remasking(masked_model):
    from dlm_core import masked

    traj = masked.VARIANT.trajectory(masked_model, 12, 2, strategy="ancestral", remask_eta=0.4)
    k = next(r.step for r in traj.records if r.remasked)  # a step that re-masks something
    at = open_page("pages/views/reverse.py", {"strategy": "ancestral", "steps": "12", "eta": "0.4", "seed": "2"})
    assert at.slider(key="eta").value == 0.4 and not at.exception
    assert any("re-masked at this step" in md.value for md in at.markdown)
    at.slider(key="rev_step").set_value(k).run()
    seq = next(md.value for md in at.markdown if "font-size:1.6rem" in md.value)
    assert seq.count("#CC79A7") == len(traj.records[k - 1].remasked)


def test_real_model_page_with_the_embedded_default():
    at = AppTest.from_file(APP, default_timeout=120)
    at.switch_page("pages/views/real.py")
    at.session_state["real_gen_length"] = 16
    at.session_state["real_steps"] = 8
    at.session_state["real_block_length"] = 8
    at.run()
    assert not at.exception, at.exception
    assert at.radio(key="real_source").value == "Embedded default"
    button(at, "real_generate").click().run()
    assert not at.exception, at.exception
    traj = at.session_state["real_traj"]
    assert traj.n_steps == 8 and traj.settings["model"].startswith("embedded")
    at.slider(key="rev_real_step").set_value(4).run()
    assert not at.exception and at.slider(key="rev_real_step").value == 4
    at.session_state["real_block_length"] = 5  # 16 is not divisible by 5: a clear message, nothing lost
    at.run()
    button(at, "real_generate").click().run()
    assert not at.exception and any("divisible" in e.value for e in at.error)
    assert at.session_state["real_traj"] is traj  # the previous generation is still there ...
    assert at.slider(key="rev_real_step").max == 8  # ... and still shown
