"""Lessons: short guided tours, each step a few sentences, one live view and, often, a question to
answer before the answer (computed from the models and the exact maths) is revealed.
Lesson and step live in the URL (?lesson=3&step=2); PageUp / PageDown move between steps."""

import streamlit as st

from dlm_core.classroom.glossary import terms_in
from dlm_core.classroom.lessons import (
    LESSONS,
    autoregressive_probabilities,
    autoregressive_trajectory,
    exact_validity_curve,
    strategy_table,
)
from dlm_core.classroom.questions import QUESTIONS, SEED
from dlm_core.render import plotly_figures
from dlm_core.render.stage import stage_data
from dlm_core.studies import compare, forward
from dlm_core.toy_language import encode
from dlm_core.variants.registry import VARIANTS
from pages import from_query, glossary_popover, shipped_model, stage, to_query, url_bool, url_notices
from pages.jobs_ui import job_queue, refresh_every, session_id, show_waiting, started_since


@st.cache_data(max_entries=64, show_spinner="Working out the answer from the models ...")
def computed_answer(question_id: str):
    """The answer from the shipped models, computed once per server and shared by every student."""
    return QUESTIONS[question_id].answer({name: shipped_model(name) for name in VARIANTS})


@st.cache_data(max_entries=64, show_spinner="Sampling ...")
def reverse_trajectory(variant: str, steps: int, seed: int, options: tuple):
    return VARIANTS[variant].trajectory(shipped_model(variant), steps, seed, **dict(options))


@st.cache_data(show_spinner="Computing the exact validities ...")
def exact_validities():
    return exact_validity_curve(shipped_model("masked"))


@st.cache_data(show_spinner="Sampling 2000 sentences per strategy ...")
def strategy_metrics():
    return strategy_table(shipped_model("masked"))


st.title("Lessons: how diffusion language models write")
notice_box = st.container()
titles = [f"{i + 1}. {lesson.title}" for i, lesson in enumerate(LESSONS)]
s = st.session_state
with st.sidebar:
    st.header("Lesson")
    from_query("lesson", 1, int, lo=1, hi=len(LESSONS))
    st.radio("Lesson", list(range(1, len(LESSONS) + 1)), key="lesson", format_func=lambda i: titles[i - 1],
             label_visibility="collapsed", on_change=lambda: s.__setitem__("step", 1))
    from_query("present", False, url_bool)
lesson = LESSONS[s.lesson - 1]
from_query("step", 1, int, lo=1, hi=len(lesson.steps))
s.step = min(max(int(s.step), 1), len(lesson.steps))
step = lesson.steps[s.step - 1]


def go(lesson_no: int, step_no: int) -> None:
    s.lesson, s.step = lesson_no, step_no


prev_at = (s.lesson, s.step - 1) if s.step > 1 else (s.lesson - 1, len(LESSONS[s.lesson - 2].steps)) \
    if s.lesson > 1 else None
next_at = (s.lesson, s.step + 1) if s.step < len(lesson.steps) else (s.lesson + 1, 1) \
    if s.lesson < len(LESSONS) else None

st.subheader(f"{titles[s.lesson - 1]} · step {s.step} of {len(lesson.steps)}")
glossary_box = st.container()
st.markdown(step.text)

# ------------------------------------------------------------------------- the live view
view = step.view
if view.kind in ("left-to-right", "reverse", "forward"):
    words, states, name = None, None, "step"
    if view.kind == "left-to-right":
        traj = autoregressive_trajectory(shipped_model("autoregressive"), view.args["sentence"])
        title = "autoregressive: one unit per step, left to right"
    elif view.kind == "reverse":
        a = view.args
        traj = reverse_trajectory(a["variant"], a["steps"], a["seed"], tuple(sorted(a["options"].items())))
        title = f"{a['variant']}: {a['steps']} steps, seed {a['seed']}"
    else:
        needs = VARIANTS[view.args["variant"]].needs_model_for_forward()
        model = shipped_model(view.args["variant"]) if needs else None
        traj, states, _ = forward.forward_sweep(view.args["variant"], encode("dog s are our friend s"), SEED,
                                                model=model)
        words, name, title = forward.FORWARD_WORDS, "noise level", f"{view.args['variant']} noise, t from 0 to 1"
    start = traj.n_steps if view.kind == "reverse" else 0
    data = stage_data(traj, title=title, start=start, present=bool(s.present), report=False, words=words,
                      step_name=name, states=states)
    stage(data, key=f"lesson-{s.lesson}-{s.step}")
    st.caption("What to notice: the colours say what each step did — grey still noise, orange changed at this "
               "step, blue kept. Press play, or scrub.")
    if view.kind == "left-to-right":  # the trained twin's predictions beside the language's exact conditionals
        st.caption("The trained model's probability of each unit given the units before it (the language's exact "
                   "one in brackets): " + ", ".join(f"{u} {p:.3f} ({e:.3f})"
                                                     for u, p, e in autoregressive_probabilities(traj)) + ".")
elif view.kind == "validity":
    v = exact_validities()
    st.bar_chart({"exact valid mass": {str(T): p for T, p in v.items()}}, x_label="steps T", y_label="valid")
    st.caption("What to notice: one step is almost never valid; the exact valid mass climbs with the number of "
               "steps (masked model, ancestral sampler, computed over all 216 sentences).")
elif view.kind == "strategies":
    st.table(strategy_metrics())
    st.caption("What to notice: low-confidence is more often valid but says fewer different sentences.")
elif view.kind == "train":
    from dlm_core.studies import training
    from dlm_core.toy_language import entropy_bits_per_unit

    recipe = training.default_config("masked")  # the shipped model's recipe: at the floor in about 10 s
    if st.button(f"Train a masked model for {recipe.steps} steps (about 10 s here)", type="primary",
                 key="lesson_train"):
        if s.get("lesson_job") is not None:  # one training per student: a new press replaces the last
            s.lesson_job.stop()
        s.lesson_job = training.TrainingJob(recipe, eval_every=max(1, recipe.steps // 10),
                                            owner=session_id(), queue=job_queue()).start()
    job = s.get("lesson_job")
    if job is not None:
        refresh = refresh_every(job)

        @st.fragment(run_every=refresh)
        def live() -> None:
            if started_since(job, refresh):
                st.rerun()  # it trains now: a full rerun makes the curve refresh every second
            snap = job.snapshot()
            if snap["waiting"]:  # in the server's shared line: its place, an estimate, a way out
                show_waiting(job.job)
                if st.button("Stop", icon=":material/stop:", key="lesson_stop"):
                    job.stop()
                    st.rerun()
                return
            if snap["running"] and st.button("Stop", icon=":material/stop:", key="lesson_stop"):
                job.stop()
            if snap["cancelled"]:
                st.info("Stopped before it started: nothing was trained.", icon=":material/stop:")
            else:
                st.plotly_chart(plotly_figures.training_figure(snap["losses"], snap["nelbo"], entropy_bits_per_unit()),
                                key="lesson_curve")
                st.caption("What to notice: the measured NELBO (points) falls towards the entropy H (the dashed "
                           "floor) and never below it.")
            if snap["error"]:
                st.error(f"Training failed: {snap['error']}")
            if not snap["running"] and s.get("lesson_rerun_done") is not job:
                s.lesson_rerun_done = job
                st.rerun()  # a full rerun ends this fragment's refreshing
        live()
elif view.kind == "compare":
    results = compare.load_results()
    st.markdown(compare.markdown_table(compare.summary_rows(results, 3)))
    st.caption("At 3 steps. What to notice: validity differs most at few steps; NELBO − H is each model's gap to the "
               "floor.")
if step.try_this:
    st.caption(f"Try this: {step.try_this}")

# ------------------------------------------------------------------ predict, then reveal
if step.question:
    q = QUESTIONS[step.question]
    key = f"guess-{q.id}"
    with st.container(border=True):
        st.markdown(f"**Predict first:** {q.prompt}")
        guess = st.radio("Your guess", list(range(len(q.choices))), format_func=lambda i: q.choices[i], index=None,
                         key=key, horizontal=len(q.choices) <= 4)
        if st.button("Reveal the answer", key=f"reveal-{q.id}", disabled=guess is None,
                     help="Commit to a guess first."):
            s[f"revealed-{q.id}"] = True
        if s.get(f"revealed-{q.id}") and guess is not None:
            ans = computed_answer(q.id)
            verdict = "Right!" if guess == ans.index else f"Not quite: it is **{q.choices[ans.index]}**."
            (st.success if guess == ans.index else st.info)(f"{verdict} {ans.why}")
    if st.toggle("Ask the whole class (a live poll: students answer on their own devices)", key=f"poll-{q.id}"):
        from pages.poll_ui import teacher_panel

        ans = computed_answer(q.id)
        teacher_panel(q.id, q.prompt, list(q.choices), ans.index, ans.why, key="lesson_poll")

# ---------------------------------------------------------------------------- navigation
c1, c2, _ = st.columns([1, 1, 3])
c1.button("Previous", icon=":material/arrow_back:", key="lesson_prev", disabled=prev_at is None,
          on_click=go, args=prev_at or (1, 1), shortcut="PageUp", width="stretch")
c2.button("Next", icon=":material/arrow_forward:", key="lesson_next", disabled=next_at is None, type="primary",
          on_click=go, args=next_at or (1, 1), shortcut="PageDown", width="stretch")
st.caption("PageUp / PageDown: previous / next step. On the stage: Space plays, ← → step, F presents.")
words = terms_in(" ".join([step.text, step.try_this, QUESTIONS[step.question].prompt if step.question else ""]))
glossary_popover(sorted(set(words)), where=glossary_box)
to_query(["lesson", "step"])
url_notices(notice_box)
