"""A lesson's handout (dlm_core/classroom/handout.py): its text, its figures as pictures, its questions
without the answers; self-contained, and readable in print."""

import base64
import io
import re

import pytest
from PIL import Image

from dlm_core.classroom.handout import handout_html
from dlm_core.classroom.lessons import LESSONS
from dlm_core.classroom.questions import QUESTIONS
from dlm_core.render import exports
from dlm_core.studies import training
from dlm_core.variants.registry import VARIANTS


@pytest.fixture(scope="module")
def models():
    return {v: training.load_checkpoint(training.default_checkpoint(v))[0] for v in VARIANTS}


@pytest.fixture(scope="module")
def lesson1(models):
    return handout_html(1, models)


def test_the_handout_has_the_lessons_text_figures_and_questions(lesson1, models):
    lesson = LESSONS[0]
    assert f"<title>Lesson 1: {lesson.title}</title>" in lesson1
    for step in lesson.steps:
        assert step.text[:60] in lesson1
        q = QUESTIONS[step.question]
        assert q.prompt in lesson1.replace("&#x27;", "'")
        assert all(f"<li>{c}</li>" in lesson1 for c in q.choices)
    pictures = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", lesson1)
    assert len(pictures) == sum(s.view.kind in ("autoregressive", "reverse", "forward") for s in lesson.steps)
    last = Image.open(io.BytesIO(base64.b64decode(pictures[-1])))
    a = lesson.steps[-1].view.args
    traj = VARIANTS[a["variant"]].trajectory(models[a["variant"]], a["steps"], a["seed"], **a["options"])
    assert last.size == exports.stage_layout(traj).size  # the stage of the step ...
    start = Image.open(io.BytesIO(exports.step_png(traj, 0, width=1280)))
    assert last.tobytes() == start.convert(last.mode).tobytes()  # ... at its start: the question asks what comes next


def test_the_handout_never_gives_the_answers(lesson1, models):
    for step in LESSONS[0].steps:
        answer = QUESTIONS[step.question].answer(models)
        assert answer.why not in lesson1
    assert "Right!" not in lesson1 and "Not quite" not in lesson1


def test_the_handout_is_self_contained(lesson1):
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", lesson1)  # nothing fetched: pictures are inline
    assert "<script" not in lesson1  # one inline onclick (print) and no script element


def test_a_table_figure_and_a_lesson_without_a_picture(models):
    page = handout_html(8, models)
    assert "<table>" in page and "The three variants at 3 steps" in page and "data:image/png" not in page
    table = {"random": {"valid": "50.0%"}, "low-confidence": {"valid": "90.0%"}}
    page = handout_html(5, models, strategies=lambda: table)
    assert "<td>random</td><td>50.0%</td>" in page
