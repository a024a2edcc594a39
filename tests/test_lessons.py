"""The lessons: the whole article in short steps, each question asked once and answered from the models, every
sentence that depends on a number computed from it (swap a model and the sentences follow), and nothing that
answers a question drawn before its reveal."""

import math
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlm_core.classroom import lessons, questions
from dlm_core.classroom.lesson_figures import figure
from dlm_core.classroom.lessons import LESSONS, REAL_KINDS, STAGE_KINDS
from dlm_core.studies import training
from dlm_core.variants.registry import VARIANTS
from pages import md_escape

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
DIFFUSION = ("masked", "uniform", "gaussian")


def test_the_lessons_are_short_and_ask_each_question_once():
    assert len(LESSONS) >= 14
    asked = [st.question for lesson in LESSONS for st in lesson.steps if st.question]
    assert set(asked) <= set(questions.QUESTIONS) and len(asked) == len(set(asked)) >= 14
    for lesson in LESSONS:
        for st in lesson.steps:
            sentences = [x for x in re.split(r"(?<=[.!?])\s+", st.text.strip()) if x]
            assert 1 <= len(sentences) <= 3, st.text
            assert not re.search(r"\d+(\.\d+)? ?%", st.text), st.text  # a model's numbers are computed, not typed
    ideas = [lesson.steps[0].idea for lesson in LESSONS[:-1]]
    assert all(ideas) and len(set(ideas)) == len(ideas)  # the summary recaps one idea per lesson


def shipped_models() -> dict:
    return {name: training.load_checkpoint(training.default_checkpoint(name))[0] for name in VARIANTS}


@pytest.fixture(scope="module")
def shipped():
    return shipped_models()


@pytest.fixture(scope="module")
def weak(shipped):
    """A masked model trained for a few steps, in place of the shipped one."""
    return dict(shipped, masked=training.train(training.default_config("masked", steps=30, seed=1)).model)


TOY_QUESTIONS = [q for q in questions.QUESTIONS if q not in ("real-threshold", "repeated-data")]


MOVES = ("first-commit", "valid-T6", "nelbo-gap", "prefill", "guidance-valid")  # answers that read the masked model


def test_answers_follow_the_checkpoint(shipped, weak):
    answers = {q: questions.QUESTIONS[q].answer(shipped) for q in TOY_QUESTIONS}
    again = {q: questions.QUESTIONS[q].answer(weak) for q in (*MOVES, "ar-next")}  # the rest: seconds, not needed
    for q, a in {**answers, **again}.items():
        assert 0 <= a.index < len(questions.QUESTIONS[q].choices), q
    assert answers["ar-next"].index == 4 and answers["ar-next"] == again["ar-next"]  # the exact language's answer
    moved = {q for q in again if answers[q].why != again[q].why}
    assert set(MOVES) <= moved, moved
    assert again["nelbo-gap"].index > answers["nelbo-gap"].index  # a weak model is further from H


@pytest.mark.parametrize("kind", ["validity_curve", "strategies", "bert_toy", "prefill_toy", "propagation_masked"])
def test_a_finding_follows_the_model(shipped, weak, kind):
    """The sentences a step says are written from its numbers: another model, other sentences, and each
    holds the numbers of its own table."""
    view = lessons.View(kind)
    a, b = figure(view, shipped), figure(view, weak)
    assert a.finding and b.finding and a.finding != b.finding
    numbers = re.findall(r"\d+\.\d+%", a.finding)
    table = " ".join(str(v) for row in a.rows for v in row.values())
    assert numbers and any(n in table for n in numbers), (a.finding, table)


def test_the_validity_chart_has_a_numeric_axis_and_rises_with_the_exact_mass(shipped):
    curve = lessons.exact_validity_curve(shipped["masked"])
    steps = sorted(curve)
    assert all(curve[a] <= curve[b] + 1e-12 for a, b in zip(steps, steps[1:]))  # the exact mass does not fall
    chart = str(lessons.validity_chart(curve))
    titles = re.findall(r"<title>T = (\d+): ([0-9.]+)</title>", chart)
    assert [int(T) for T, _ in titles] == steps and [float(v) for _, v in titles] == [round(curve[T], 3) for T in steps]
    xs = [float(x) for x in re.findall(r"<circle cx='([0-9.]+)'", chart)]
    assert xs == sorted(xs) and len(xs) == len(steps)  # drawn in the order of T on a numeric axis
    gaps = [(b - a) / (math.log10(tb) - math.log10(ta)) for a, b, ta, tb in zip(xs, xs[1:], steps, steps[1:])]
    assert max(gaps) - min(gaps) < 0.01 * max(gaps)  # positions proportional to log T (to a pixel): a numeric axis


def test_the_strategies_sentence_matches_its_table():
    same = {"random": {"validity": 0.9995, "validity_se": 0.0005, "coverage": 210, "kl_valid_bits": 0.01},
            "low-confidence": {"validity": 0.9990, "validity_se": 0.0007, "coverage": 120, "kl_valid_bits": 0.4}}
    text = lessons.strategy_finding(same)
    assert text.startswith("Both strategies are about equally valid") and "random order writes more" in text
    apart = dict(same, **{"low-confidence": dict(same["low-confidence"], validity=0.9)})
    assert lessons.strategy_finding(apart).startswith("Random order is more often valid than low-confidence")
    assert lessons.strategy_rows(same)[0]["valid"] == "99.95% ± 0.05%"  # as precise as the comparison needs


def test_every_stage_kind_gives_a_run_and_the_others_do_not(shipped):
    for lesson in LESSONS:
        for st in lesson.steps:
            if st.view.kind in STAGE_KINDS and st.view.kind not in REAL_KINDS:
                assert figure(st.view, shipped).trajectory is not None, st.view.kind
            elif st.view.kind not in STAGE_KINDS:
                assert figure(st.view, shipped).trajectory is None, st.view.kind


# ------------------------------------------------------------------------------- the page

def open_lesson(lesson: int, step: int) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=300)
    at.query_params.update({"lesson": str(lesson), "step": str(step)})
    at.switch_page("pages/views/lessons.py")
    at.run()
    assert not at.exception, at.exception
    return at


def locate(kind: str) -> tuple[int, int]:
    return next((i, j) for i, lesson in enumerate(LESSONS, 1) for j, st in enumerate(lesson.steps, 1)
                if st.view.kind == kind)


def texts(at) -> str:
    return " ".join([m.value for m in at.markdown] + [m.value for m in [*at.info, *at.success, *at.caption]])


def test_nothing_answers_the_question_before_the_reveal(shipped):
    li, si = locate("propagation_masked")
    step = LESSONS[li - 1].steps[si - 1]
    fig = figure(step.view, shipped)
    at = open_lesson(li, si)
    before = texts(at)
    assert md_escape(fig.finding)[:60] not in before and "| outcome |" not in before
    assert next(b for b in at.button if b.key == "lesson_reveal").disabled  # no answer before a guess
    at.radio(key=f"guess-{li}-{si}").set_value(0).run()
    next(b for b in at.button if b.key == "lesson_reveal").click().run()
    after = texts(at)
    assert md_escape(fig.finding)[:60] in after and "| outcome |" in after
    assert md_escape(questions.QUESTIONS[step.question].answer(shipped).why)[:40] in after


def test_next_and_previous_walk_through_the_lessons():
    at = open_lesson(1, 2)
    next(b for b in at.button if b.key == "lesson_next").click().run()
    assert (at.session_state["lesson"], at.session_state["step"]) == (2, 1)
    next(b for b in at.button if b.key == "lesson_prev").click().run()
    assert (at.session_state["lesson"], at.session_state["step"]) == (1, 2)


def test_the_summary_links_back_to_every_lesson():
    at = open_lesson(len(LESSONS), 1)
    buttons = [b for b in at.button if b.key and b.key.startswith("summary-")]
    assert len(buttons) == len(LESSONS) - 1
    buttons[2].click().run()
    assert (at.session_state["lesson"], at.session_state["step"]) == (3, 1)


def test_a_lesson_question_can_be_put_to_the_class(tmp_path, monkeypatch):
    monkeypatch.setenv("DLM_DATA_DIR", str(tmp_path))  # the poll's database, for this test only
    at = open_lesson(1, 1)
    at.toggle(key="lesson_poll_on").set_value(True).run()
    assert not at.exception
    next(b for b in at.button if b.key == "lesson_poll_open_ar-next").click().run()
    assert not at.exception
    from dlm_core.classroom.poll import SQLitePollStore

    code = at.query_params["room"]
    code = code[0] if isinstance(code, list) else code
    room = SQLitePollStore(tmp_path / "poll.sqlite3").room(code)
    assert room is not None and room.question_id == "ar-next" and room.prompt == questions.QUESTIONS["ar-next"].prompt


def test_the_article_map_names_only_steps_that_exist_and_covers_every_section():
    text = (ROOT / "docs" / "article-map.md").read_text()
    cited = re.findall(r"lesson (\d+)\.(\d+)", text)
    assert len(cited) >= len(LESSONS)
    for li, si in cited:
        assert 1 <= int(li) <= len(LESSONS) and 1 <= int(si) <= len(LESSONS[int(li) - 1].steps), (li, si)
    for section in ("## 1.", "## 2.", "## 3.", "## 4."):
        assert section in text
    assert {int(li) for li, _ in cited} == set(range(1, len(LESSONS) + 1))  # every lesson teaches something listed
