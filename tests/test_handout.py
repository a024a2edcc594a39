"""A lesson's handout (dlm_core/classroom/handout.py): its text, its figures as pictures, its questions
without the answers; self-contained, and readable in print."""

import base64
import io
import re

import pytest
from PIL import Image

from dlm_core.classroom.handout import handout_html
from dlm_core.classroom.lesson_figures import figure
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
        assert step.text[:60].replace("'", "&#x27;") in lesson1
        if step.question:
            q = QUESTIONS[step.question]
            assert q.prompt in lesson1.replace("&#x27;", "'").replace("&quot;", '"')
            assert all(f"<li>{c}</li>" in lesson1 for c in q.choices)
    pictures = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", lesson1)
    assert len(pictures) == len(lesson.steps)  # both steps play a run on the stage
    first = Image.open(io.BytesIO(base64.b64decode(pictures[0])))
    traj = figure(lesson.steps[0].view, models).trajectory  # the step asks a question ...
    start = Image.open(io.BytesIO(exports.step_png(traj.until(0), 0, width=1280)))
    assert first.tobytes() == start.convert(first.mode).tobytes()  # ... so its picture is the run's start


def test_the_handout_never_gives_the_answers(lesson1, models):
    for step in LESSONS[0].steps:
        if step.question:
            assert QUESTIONS[step.question].answer(models).why not in lesson1
    assert "Right!" not in lesson1 and "Not quite" not in lesson1


def test_the_handout_is_self_contained(lesson1):
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", lesson1)  # nothing fetched: pictures are inline
    assert "<script" not in lesson1  # one inline onclick (print) and no script element


def test_a_table_figure_and_its_finding_where_nothing_is_asked(models):
    clamp = next(i for i, lesson in enumerate(LESSONS, 1) for s in lesson.steps if s.view.kind == "clamping")
    step = next(s for s in LESSONS[clamp - 1].steps if s.view.kind == "clamping")
    assert not step.question
    page = handout_html(clamp, models)
    assert "<table>" in page and "1000 samples each" in page
    assert figure(step.view, models).finding.replace("'", "&#x27;") in page
