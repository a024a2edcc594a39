"""The pages, driven with Streamlit's AppTest (no browser)."""

from pathlib import Path

import pytest  # noqa: I001
from conftest import generate_on_the_real_page, train_on_the_page
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


def stage_of(at) -> dict:
    """What the page hands the browser player (dlm_core.stage.stage_data)."""
    import json

    stages = at.get("bidi_component")
    assert len(stages) == 1, f"expected one stage, found {len(stages)}"
    return json.loads(stages[0].proto.json)


def shown_units(at, k: int | None = None) -> list[str]:
    """The units the stage shows at step k (default: the step it starts on)."""
    d = stage_of(at)
    k = d["start"] if k is None else k
    return [d["texts"][str(i)] for i in d["tokens"][k]]


def states_at(at, k: int) -> list[str]:
    d = stage_of(at)
    return [d["state_list"][int(c)]["key"] for c in d["states"][k]]


def svg_titles(at) -> list[str]:
    """The hover texts (<title>) of the page's SVG figures, in order."""
    import html
    import re

    return [html.unescape(t) for md in at.markdown for t in re.findall(r"<title>(.*?)</title>", md.value)]


def test_home_renders_the_exact_numbers():
    at = open_page("pages/views/home.py")
    values = {m.label: m.value for m in at.metric}
    assert values["Sentences in the language"] == str(T.support_size())
    assert f"{T.entropy_bits_per_unit():.4f}" in values["Exact entropy H"]
    assert any("Wheel of Fortune" in md.value for md in at.markdown)


def test_home_links_every_room_lessons_first():
    import re

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    linked = [link.proto.page for link in at.get("page_link")]
    rooms = re.findall(r'url_path="([a-z_]+)"', (Path(APP)).read_text())  # every page of the navigation
    assert linked[0] == "lessons" and sorted(linked) == sorted(r for r in rooms if r not in ("welcome", "home"))


def test_reverse_page_hands_the_whole_trajectory_to_the_stage():
    at = open_page("pages/views/reverse.py")
    d = stage_of(at)
    assert d["T"] == 6 and d["start"] == 6 and d["N"] == 6  # opens on the finished sentence
    assert "[MASK]" not in shown_units(at)
    assert shown_units(at, 0) == ["[MASK]"] * 6 and states_at(at, 0) == ["mask"] * 6
    for k in range(1, 7):  # low-confidence, 6 steps: one unit per step, in the player's data
        assert shown_units(at, k).count("[MASK]") == 6 - k and d["commits"][k] == 1
    assert [d["state_list"][c]["key"] for c in d["legend"]] == ["mask", "committed_now", "committed_earlier"]
    assert any("at step 6" in h.value for h in at.subheader)


def test_the_views_follow_the_step_in_the_link():
    at = open_page("pages/views/reverse.py", {"step": "2", "pos": "3"})
    assert stage_of(at)["start"] == 2 and at.selectbox(key="pos").value == 3
    assert any("at step 2" in h.value for h in at.subheader)
    assert not any("valid sentence" in m.value for m in at.success)  # the verdict waits for the last step


def test_strategy_steps_and_blocks_change_the_trajectory():
    at = open_page("pages/views/reverse.py")
    at.selectbox(key="strategy").set_value("ancestral").run()
    assert not at.exception
    at.slider(key="steps").set_value(12).run()
    assert stage_of(at)["T"] == 12 and not at.exception
    at.selectbox(key="strategy").set_value("margin").run()
    at.slider(key="steps").set_value(4).run()
    at.selectbox(key="block_length").set_value(3).run()
    assert not at.exception and stage_of(at)["T"] == 4
    units = shown_units(at, 2)  # 2 steps per block of 3: the first block is done, the second untouched
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
    d = stage_of(at)
    assert traj.n_steps == 4 and d["T"] == 4 and d["start"] == 4 and d["kind"] == "text"
    assert d["rows"] == list(range(traj.gen_start, traj.gen_start + 8))  # the generated part; prompt rows hidden
    assert at.number_input(key="real_pos").value == traj.gen_start + 1  # numbered as the grid's rows
    at.toggle(key="real_prompt_rows").set_value(True).run()
    assert not at.exception and stage_of(at)["rows"] == list(range(traj.length))
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
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("pages/views/train.py")
    at.run()
    assert not at.exception
    job = train_on_the_page(at, 50)
    assert job.result is not None and job.result.steps_done == 50 and not job.result.stopped
    at.run()
    assert not at.exception
    assert any("Done after 50 steps" in s.value for s in at.success)
    labels = list(at.session_state["session_models"])
    assert len(labels) == 1 and "masked" in labels[0]
    at.switch_page("pages/views/reverse.py")
    at.run()
    assert labels[0] in at.selectbox(key="model").options
    at.selectbox(key="model").set_value(labels[0]).run()
    assert not at.exception and stage_of(at)["T"] == at.slider(key="steps").value


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
    job.wait(timeout=60)
    assert job.result is not None and job.result.stopped and job.result.steps_done < 5000
    at.run()
    assert not at.exception and any("Stopped after" in s.value for s in at.success)


@pytest.mark.parametrize("variant", ["uniform", "gaussian"])
def test_reverse_page_for_uniform_and_gaussian(variant):
    at = open_page("pages/views/reverse.py", {"variant": variant})
    assert at.selectbox(key="variant").value == variant
    assert stage_of(at)["T"] == at.slider(key="steps").value == 24
    at = open_page("pages/views/reverse.py", {"variant": variant, "step": "3"})
    assert stage_of(at)["start"] == 3 and shown_units(at) and not at.exception
    assert "changed" in states_at(at, 1)  # self-correction: units change at every step
    # the self-correction bars say, per step, how many positions the stage shows as changed
    bars = [t for t in svg_titles(at) if "positions changed" in t]
    assert bars == [f"step {j}: {states_at(at, j).count('changed')} positions changed" for j in range(1, 25)]
    paths = [t for t in svg_titles(at) if t.startswith("position ") and " at step 3: nearest " in t]
    assert len(paths) == (6 if variant == "gaussian" else 0)  # the embedding paths: Gaussian only
    assert not at.get("plotly_chart")  # the views under the stage are SVG: no chart script for the browser to load
    if variant == "gaussian":
        at.toggle(key="clamp").set_value(True).run()
        assert not at.exception
    at.slider(key="steps").set_value(6).run()
    assert not at.exception and stage_of(at)["T"] == 6


def test_switching_variant_applies_its_default_steps():
    at = open_page("pages/views/reverse.py")
    assert at.slider(key="steps").value == 6
    at.selectbox(key="variant").set_value("gaussian").run()
    assert not at.exception and at.slider(key="steps").value == 24 and stage_of(at)["T"] == 24


@pytest.mark.parametrize("variant", ["masked", "uniform", "gaussian"])
def test_forward_page_sweeps_t_and_corrupts_more_as_t_grows(variant):
    at = open_page("pages/views/forward.py", {"fwd_variant": variant, "fwd_t": "0.25"})
    assert at.selectbox(key="fwd_variant").value == variant
    d = stage_of(at)
    assert d["T"] == 20 and d["start"] == 5  # t = 0.25 on the sweep t = 0, 0.05, ..., 1
    clean, noisy = shown_units(at, 0), shown_units(at, 20)
    assert " ".join(clean) == at.selectbox(key="fwd_sentence").value  # t = 0: the sentence itself
    assert noisy != clean and states_at(at, 0) == ["committed_earlier"] * 6
    if variant == "masked":
        assert noisy == ["[MASK]"] * 6
        # the same draws at every t: a masked position stays masked as t grows
        masked = [[u == "[MASK]" for u in shown_units(at, k)] for k in range(21)]
        assert all(not a or b for k in range(20) for a, b in zip(masked[k], masked[k + 1]))
    labels = [d["state_list"][c]["label"] for c in d["legend"]]
    assert "clean (still the sentence's unit)" in labels and "corrupted at this t" in labels
    assert any("t = 0.25" in m.value for m in at.markdown)
    at.selectbox(key="fwd_sentence").set_value("our dog s are your s").run()
    assert not at.exception and not at.get("plotly_chart")
    schedule = next(t for t in svg_titles(at) if " at t = 0.25: " in t)  # the schedule's marker at the chosen t
    if variant == "gaussian":
        assert schedule.startswith("α² (signal) at t = 0.25: ")
    else:  # the linear schedule: alpha_t = 1 - t
        assert schedule == "α_t (still clean) at t = 0.25: 0.750"
    assert any("How?" in e.label for e in at.expander)


def test_compare_page_opens_on_the_shipped_results_and_recomputes(monkeypatch):
    import json

    from dlm_core.studies import compare

    def axis_titles(at):
        return [json.loads(c.proto.spec)["layout"]["yaxis"]["title"]["text"] for c in at.get("plotly_chart")]

    at = open_page("pages/views/compare.py")
    # one section at a time: the page builds only the figures it shows
    assert at.get("button_group")[0].options == ["Quality against steps", "Strategies and schedules",
                                                  "Threshold decoding", "One seed, every variant"]
    assert axis_titles(at) == ["validity", "coverage of the support"]
    at.get("button_group")[0].set_value("One seed, every variant").run()
    assert not at.exception and len(at.get("plotly_chart")) == 4 and at.number_input(key="cmp_seed").value == 0
    assert at.query_params["cmp_view"] in ("One seed, every variant", ["One seed, every variant"])
    at.get("button_group")[0].set_value("Strategies and schedules").run()
    assert not at.exception and len(at.get("plotly_chart")) == 3 and at.radio(key="cmp_strategy_T")
    table = next(md.value for md in at.markdown if md.value.startswith("| variant"))
    assert [line.split("|")[1].strip() for line in table.splitlines()[2:]] == ["masked", "uniform", "gaussian"]
    # the shipped file predates the autoregressive twin: the page says so instead of recomputing
    assert any("no row for the autoregressive variant" in i.value for i in at.info)
    at.select_slider(key="cmp_T").set_value(6).run()
    assert not at.exception
    # recompute with tiny settings so the test stays fast (the page takes whatever settings it gets)
    monkeypatch.setattr(compare.CompareSettings, "quick", classmethod(
        lambda cls: cls(n_samples=300, n_t=20, steps=(1, 6), strategy_steps=(6,), remdm_etas=(0.0, 0.2))))
    from dlm_core.serving import jobs

    done = jobs.default_queue().counts[jobs.DONE]
    next(b for b in at.button if b.key == "cmp_recompute").click().run()
    assert not at.exception
    assert jobs.default_queue().counts[jobs.DONE] == done + 1  # computed in the server's job queue
    assert at.session_state["compare_results"]["settings"]["n_samples"] == 300
    assert at.select_slider(key="cmp_T").options == ["1", "6"]
    # every registered variant is in the recomputed results; at T = 1 the autoregressive row says why it is empty
    table = next(md.value for md in at.markdown if md.value.startswith("| variant"))
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert list(rows) == ["masked", "uniform", "gaussian", "autoregressive"]
    at.select_slider(key="cmp_T").set_value("1").run()
    table = next(md.value for md in at.markdown if md.value.startswith("| variant"))
    assert "needs at least 6 steps" in table and not any("no row for" in i.value for i in at.info)


def test_reverse_page_shows_remasking(masked_model):
    from dlm_core.variants import masked

    traj = masked.VARIANT.trajectory(masked_model, 12, 2, strategy="ancestral", remask_eta=0.4)
    k = next(r.step for r in traj.records if r.remasked)  # a step that re-masks something
    at = open_page("pages/views/reverse.py", {"strategy": "ancestral", "steps": "12", "eta": "0.4", "seed": "2"})
    assert at.slider(key="eta").value == 0.4 and not at.exception
    d = stage_of(at)
    assert "re-masked at this step (ReMDM)" in [d["state_list"][c]["label"] for c in d["legend"]]
    assert states_at(at, k).count("remasked") == len(traj.records[k - 1].remasked)


def test_real_model_page_with_the_embedded_default():
    at = generate_on_the_real_page(APP)
    assert at.radio(key="real_source").value == "Embedded default"
    traj = at.session_state["real_traj"]
    assert traj.n_steps == 8 and traj.settings["model"].startswith("embedded")
    assert stage_of(at)["T"] == 8 and stage_of(at)["start"] == 8
    at.session_state["real_block_length"] = 5  # 16 is not divisible by 5: a clear message, nothing lost
    at.run()
    button(at, "real_generate").click().run()
    assert not at.exception and any("divisible" in e.value for e in at.error)
    assert at.session_state["real_traj"] is traj  # the previous generation is still there ...
    assert stage_of(at)["T"] == 8  # ... and still shown


def test_threshold_decoding_on_the_reverse_compare_and_real_pages(masked_model):
    """Reverse: the threshold strategy and its slider; the stage has one column per step taken and the page
    says the run's forward passes. Compare: validity against forward passes. Real: the same run as
    hf_adapter.generate with the page's settings, its passes beside it."""
    import json

    from dlm_core.sampling.masked_sampler import MaskedSamplerConfig
    from dlm_core.studies import threshold_decoding
    from dlm_core.variants import hf_adapter, masked

    at = open_page("pages/views/reverse.py", {"strategy": "threshold", "threshold": "0.3", "seed": "5"})
    assert at.slider(key="threshold").value == 0.3 and not at.slider(key="threshold").disabled
    traj = masked.VARIANT.trajectory(masked_model, 6, 5, strategy="threshold", threshold=0.3)
    d = stage_of(at)
    assert d["T"] == d["start"] == traj.n_steps and d["tokens"][-1] == traj.final
    assert sum(d["commits"]) == 6 and all(c >= 1 for c in d["commits"][1:])
    assert threshold_decoding.passes_note(traj) in [c.value for c in at.caption]
    at.selectbox(key="strategy").set_value("random").run()  # the threshold does not apply: drawn disabled
    assert not at.exception and at.slider(key="threshold").disabled and stage_of(at)["T"] == 6

    at = open_page("pages/views/compare.py", {"cmp_view": "Threshold decoding"})
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    fig = next(s for s in specs if s["layout"]["xaxis"]["title"]["text"] == "forward passes per sentence")
    names = [t["name"] for t in fig["data"]]
    assert names[0].startswith("threshold") and any(n.startswith("low-confidence") for n in names)
    assert all(1 <= x <= 6 for t in fig["data"] for x in t["x"])
    assert any(c.value.startswith("What to notice: up and to the left") and "T = 6" in c.value for c in at.caption)

    at = AppTest.from_file(APP, default_timeout=180)
    at.switch_page("pages/views/real.py")
    for key, value in {"real_gen_length": 8, "real_steps": 2, "real_block_length": 8, "real_strategy": "threshold",
                       "real_threshold": 0.1}.items():
        at.session_state[key] = value
    at.run()
    button(at, "real_generate").click().run()
    assert not at.exception, at.exception
    got = at.session_state["real_traj"]
    lm = hf_adapter.load()
    want = hf_adapter.generate(lm, at.session_state["real_prompt"], 8, MaskedSamplerConfig(
        steps=8, strategy="threshold", threshold=0.1, temperature=1.0, block_length=8, seed=0, top_k=10))
    assert got.final == want.final and got.n_steps == want.n_steps == stage_of(at)["T"]
    assert got.settings["steps"] == 8  # the page's Steps (2) is not the threshold's: it takes what it needs
    assert threshold_decoding.passes_note(got, unit="token") in [c.value for c in at.caption]
