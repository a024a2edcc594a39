"""The Lessons page's pieces: the predict-then-reveal box, a step's figure (the stage, tables, charts, texts and
findings of dlm_core.classroom.lesson_figures), and the views that run live (training, the lab, the summary).

Before a question is revealed nothing that answers it is drawn: the stage gets the run only up to
`Step.shown_before` (the data the browser receives stops there), and the rest of the figure waits."""

from __future__ import annotations

import streamlit as st

from dlm_core.classroom.lesson_plan import LESSONS
from dlm_core.classroom.questions import QUESTIONS
from dlm_core.render.stage import stage_data
from dlm_core.studies.compare import markdown_table
from pages import computed_answer, md_escape, show_html, stage
from pages.jobs_ui import job_queue, live_training, session_id


def question_box(step, lesson_no: int, step_no: int) -> bool:
    """Predict, then reveal: the question, a guess, and once the guess is committed the answer and why. The
    guess and the reveal are kept per step. Returns whether the step's answer may be shown."""
    if not step.question:
        return True
    q, s = QUESTIONS[step.question], st.session_state
    revealed_key = f"revealed-{lesson_no}-{step_no}"
    with st.container(border=True, key="lesson-question"):
        st.markdown(f"**Predict first:** {q.prompt}")
        guess = st.radio("Your guess", list(range(len(q.choices))), format_func=lambda i: q.choices[i], index=None,
                         key=f"guess-{lesson_no}-{step_no}", horizontal=len(q.choices) <= 4)
        if not s.get(revealed_key):
            if st.button("Reveal the answer", key="lesson_reveal", disabled=guess is None,
                         help="Commit to a guess first: the rest of the step shows once you have."):
                s[revealed_key] = True
                st.rerun()
            st.caption("The view below shows only the start until you reveal: it would give the answer away.")
            return False
        ans = computed_answer(q.id)
        if guess is None:
            st.info(f"The answer: **{md_escape(q.choices[ans.index])}**. {md_escape(ans.why)}")
        else:
            right = guess == ans.index
            verdict = "Right!" if right else f"Not quite: it is **{md_escape(q.choices[ans.index])}**."
            (st.success if right else st.info)(f"{verdict} {md_escape(ans.why)}")
    return True


def _title(traj, fig) -> str:
    if fig.stage.get("title"):
        return fig.stage["title"]
    steps = f"{traj.n_steps} step{'s' if traj.n_steps != 1 else ''}"
    if traj.is_real_text:
        return f"{traj.settings.get('model', 'real model')}: {steps}"
    return f"{traj.variant}: {steps}"


def draw_figure(fig, step, revealed: bool, lesson_no: int, step_no: int, present: bool) -> list[str]:
    """A step's figure; returns the texts it showed (for the glossary)."""
    said = []
    if fig.trajectory is not None:
        traj = fig.trajectory if revealed else fig.trajectory.until(step.shown_before)
        lead = [step.text] + ([QUESTIONS[step.question].prompt] if step.question and not revealed else [])
        stage_options = {k: v for k, v in fig.stage.items() if k != "title"}
        if "states" in stage_options:
            stage_options["states"] = stage_options["states"][: traj.n_steps + 1]
        rows = None
        if traj.is_real_text:
            rows = list(range(traj.gen_start, traj.gen_start + int(traj.settings.get("gen_length", traj.length))))
        data = stage_data(traj, title=_title(fig.trajectory, fig), start=traj.n_steps if revealed else 0,
                          present=present, report=False, rows=rows, lead=lead, **stage_options)
        stage(data, key=f"lesson-{lesson_no}-{step_no}-{'all' if revealed else 'start'}")
        st.caption("What to notice: colours and marks say what each step did: a dashed grey cell is still noise, a "
                   "dot marks a unit written at this step, a triangle a unit changed. Press play, or scrub.")
    if not revealed:
        return said
    if fig.chart is not None:
        show_html(fig.chart)
    if fig.plot is not None:
        st.plotly_chart(fig.plot, key=f"lesson-plot-{lesson_no}-{step_no}")
    if fig.rows:
        st.markdown(markdown_table([{k: md_escape(v) for k, v in r.items()} for r in fig.rows]))
        if fig.caption:
            st.caption(md_escape(fig.caption))
    for label, text in fig.texts:
        st.markdown(f"**{md_escape(label)}:** {md_escape(text)}")
    if fig.finding:
        st.info(md_escape(fig.finding), icon=":material/insights:")
        said.append(fig.finding)
    if step.view.kind == "lab":
        st.markdown(f"[Open the training lab on this preset](lab?lab_preset={step.view.args['preset']}): its runs "
                    "train side by side in the server's line, with their curves live.")
    return said


def draw_live(step, revealed: bool, go) -> None:
    """The views that run live: the training (through the queue) and the summary."""
    if step.view.kind == "summary":
        for i, lesson in enumerate(LESSONS[:-1], start=1):
            c1, c2 = st.columns([2, 5])
            c1.button(f"{i}. {lesson.title}", key=f"summary-{i}", on_click=go, args=(i, 1), width="stretch")
            c2.markdown(md_escape(lesson.steps[0].idea))
        return
    if not revealed:
        return
    if step.view.kind == "train":
        from dlm_core.studies import training
        from dlm_core.toy_language import entropy_bits_per_unit

        s = st.session_state
        recipe = training.default_config("masked")  # the shipped model's recipe: at the floor in seconds
        if st.button(f"Train a masked model for {recipe.steps} steps", type="primary", key="lesson_train"):
            if s.get("lesson_job") is not None:  # one training per student: a new press replaces the last
                s.lesson_job.stop()
            s.lesson_job = training.TrainingJob(recipe, eval_every=max(1, recipe.steps // 10),
                                                owner=session_id(), queue=job_queue()).start()
        if s.get("lesson_job") is not None:
            live_training(s.lesson_job, "lesson", entropy_bits_per_unit(), "What to notice: the measured NELBO "
                          "(diamonds) falls towards the entropy H (the dashed floor) and never below it.")
