"""Lessons: the article as short guided steps. Each step says a few sentences, shows one live view computed from
the models (dlm_core.classroom.lesson_figures) and often asks a question first: until the student commits to a
guess and reveals it, nothing on the page gives the answer away (the stage stops at the run's start, tables,
charts and findings are not drawn). Lesson and step live in the URL (?lesson=3&step=2); PageUp / PageDown move
between steps; ?present=1 draws the stage with the lesson's text for a projector."""

from dataclasses import dataclass

import streamlit as st

from dlm_core.classroom.glossary import terms_in
from dlm_core.classroom.handout import handout_html
from dlm_core.classroom.lesson_figures import figure
from dlm_core.classroom.lesson_plan import LESSONS
from dlm_core.classroom.lessons import lesson_step
from dlm_core.classroom.questions import QUESTIONS
from pages import PageState, computed_answer, glossary_popover, setting, shipped_models
from pages.lesson_ui import draw_figure, draw_live, question_box

WORDS = ["DLM (diffusion language model)", "toy language", "token / unit", "stage (player)", "scrub"]


@dataclass
class LessonView:
    """Which lesson step is shown, in the link (?lesson=3&step=2)."""

    lesson: int = setting(1, label="Lesson", lo=1, hi=len(LESSONS), widget="radio")
    step: int = setting(1, lo=1, widget="url")  # up to the lesson's number of steps
    present: bool = setting(False, widget="url", in_link=False)  # presenter mode (also F on the stage)


@st.cache_data(max_entries=64, show_spinner="Working this step out from the models ...")
def step_figure(lesson_no: int, step_no: int):
    """What a step shows, computed once per server and shared by every student."""
    return figure(lesson_step(lesson_no, step_no).view, shipped_models(), shipped_models()["real"])


st.title("Lessons: how diffusion language models write")
notice_box = st.container()
titles = [f"{i + 1}. {lesson.title}" for i, lesson in enumerate(LESSONS)]
s = st.session_state
page = PageState(LessonView)
with st.sidebar:
    st.header("Lesson")
    page.widget("lesson", choices=list(range(1, len(LESSONS) + 1)), format_func=lambda i: titles[i - 1],
                label_visibility="collapsed", on_change=lambda: s.__setitem__("step", 1))
    page.bind("present")
    st.download_button(  # made when pressed: the lesson's text, its figures as pictures, the questions unanswered
        "Handout to print or save as PDF", lambda: handout_html(s.lesson, shipped_models(), shipped_models()["real"]),
        file_name=f"lesson-{s.lesson}-handout.html", mime="text/html", icon=":material/print:", key="lesson_handout",
        on_click="ignore", help="One page to open in a browser and print: no answers in it.")
lesson = LESSONS[s.lesson - 1]
page.bind("step", hi=len(lesson.steps))
s.step = min(max(int(s.step), 1), len(lesson.steps))
step = lesson.steps[s.step - 1]


def go(lesson_no: int, step_no: int) -> None:
    s.lesson, s.step = lesson_no, step_no


prev_at = (s.lesson, s.step - 1) if s.step > 1 else (s.lesson - 1, len(LESSONS[s.lesson - 2].steps)) \
    if s.lesson > 1 else None
next_at = (s.lesson, s.step + 1) if s.step < len(lesson.steps) else (s.lesson + 1, 1) \
    if s.lesson < len(LESSONS) else None

st.subheader(f"{titles[s.lesson - 1]} · step {s.step} of {len(lesson.steps)}")
st.caption(f"The article: {lesson.section}")
glossary_box = st.container()
with st.container(key="lesson-present-text" if s.present else "lesson-text"):
    st.markdown(step.text)
    revealed = question_box(step, s.lesson, s.step)  # True when nothing is asked, or once the guess is revealed

# ------------------------------------------------------------------------- the live view
said = [step.text, step.try_this]
if step.view.kind in ("train", "summary"):
    draw_live(step, revealed, go)
else:
    fig = step_figure(s.lesson, s.step)
    said += draw_figure(fig, step, revealed, s.lesson, s.step, bool(s.present))
if step.try_this:
    st.caption(f"Try this: {step.try_this}")
if step.question:
    if st.toggle("Ask the whole class (a live poll: students answer on their own devices)", key="lesson_poll_on"):
        from pages.poll_ui import teacher_panel

        q, ans = QUESTIONS[step.question], computed_answer(step.question)
        teacher_panel(q.id, q.prompt, list(q.choices), ans.index, ans.why, key="lesson_poll")

# ---------------------------------------------------------------------------- navigation
c1, c2, _ = st.columns([1, 1, 3])
c1.button("Previous", icon=":material/arrow_back:", key="lesson_prev", disabled=prev_at is None,
          on_click=go, args=prev_at or (1, 1), shortcut="PageUp", width="stretch")
c2.button("Next", icon=":material/arrow_forward:", key="lesson_next", disabled=next_at is None, type="primary",
          on_click=go, args=next_at or (1, 1), shortcut="PageDown", width="stretch")
st.caption("PageUp / PageDown: previous / next step. On the stage: Space plays, ← → step, F presents.")
glossary_popover(sorted(set(WORDS + terms_in(" ".join(said + ([QUESTIONS[step.question].prompt]
                                                                if step.question else []))))), where=glossary_box)
page.finish(notice_box)
