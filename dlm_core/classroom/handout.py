"""A lesson as a handout to print or save as PDF: its text, each step's figure as a static picture
(the stage as a PNG of its last step, a chart as SVG, a table), the "try this" lines and the
questions with their choices and room to answer, never the answers. One self-contained HTML file
(no script from outside, every value escaped); the Lessons page offers it for download. No Streamlit."""

from __future__ import annotations

import base64

from dlm_core.classroom.lessons import LESSONS, View, autoregressive_trajectory, exact_validity_curve, strategy_table
from dlm_core.classroom.questions import QUESTIONS, SEED
from dlm_core.render import exports
from dlm_core.render.safe_html import Markup, html_of, join
from dlm_core.render.svg_chart import SvgChart
from dlm_core.trajectory import Trajectory

FIGURE_WIDTH = 1280  # px of the stage pictures, as the slide exports (printed at the page's width)
CSS = """
body { font-family: "Source Sans 3", "Source Sans Pro", Arial, sans-serif; color: #111; max-width: 52em;
  margin: 2em auto; padding: 0 1em; line-height: 1.45; }
h1 { font-size: 1.7em; margin-bottom: 0.2em; } h2 { font-size: 1.25em; margin: 1.4em 0 0.4em; }
figure { margin: 0.6em 0; break-inside: avoid; } figure img, figure svg { max-width: 100%; height: auto; }
figcaption, .try { color: #444; font-size: 0.95em; }
table { border-collapse: collapse; margin: 0.5em 0; } th, td { border: 1px solid #999; padding: 3px 8px; }
.question { border: 2px solid #333; border-radius: 6px; padding: 0.6em 1em; break-inside: avoid; }
.question ul { list-style: none; padding-left: 0.4em; } .question li::before { content: "\\2610  "; }
.lines { border-bottom: 1px solid #999; height: 1.8em; }
.print { font: inherit; padding: 6px 14px; margin: 0.5em 0; }
@media print { .print { display: none; } body { margin: 0; max-width: none; } }
"""


def _png(traj: Trajectory, k: int, alt: str) -> Markup:
    data = base64.b64encode(exports.step_png(traj, k, width=FIGURE_WIDTH)).decode("ascii")
    return html_of("<img src='data:image/png;base64,{data}' alt='{alt}'>", data=data, alt=alt)


def _table(rows: list[dict], caption: str) -> Markup:
    if not rows:
        return Markup("")
    keys = list(rows[0])
    head = join([html_of("<th scope='col'>{k}</th>", k=k) for k in keys])
    body = join([html_of("<tr>{cells}</tr>", cells=join([html_of("<td>{v}</td>", v=r[k]) for k in keys]))
                 for r in rows])
    return html_of("<table><caption>{c}</caption><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>",
                   c=caption, h=head, b=body)


def step_figure(view: View, models: dict, validity=None, strategies=None, asks: bool = False) -> Markup:
    """The figure of one lesson step, static. `models`: the shipped model of each variant; `validity`,
    `strategies`: the lessons' computed curve and table where the caller has them (else computed here);
    `asks`: the step asks a question, so its stage is drawn at the start, not at the end that answers it."""
    from dlm_core.studies import compare, forward
    from dlm_core.toy_language import encode
    from dlm_core.variants.registry import VARIANTS

    if view.kind in ("autoregressive", "reverse", "forward"):
        if view.kind == "autoregressive":
            traj, what = autoregressive_trajectory(view.args["sentence"]), "an autoregressive model, left to right"
        elif view.kind == "reverse":
            a = view.args
            traj = VARIANTS[a["variant"]].trajectory(models[a["variant"]], a["steps"], a["seed"], **a["options"])
            what = f"the {a['variant']} model's reverse process in {a['steps']} steps (seed {a['seed']})"
        else:
            v = view.args["variant"]
            model = models[v] if VARIANTS[v].needs_model_for_forward() else None
            traj, _, _ = forward.forward_sweep(v, encode("dog s are our friend s"), SEED, model=model)
            what = f"{v} noise on one sentence, t from 0 to 1"
        k = 0 if asks else traj.n_steps
        then = " Shown at its start: the question below is about what happens next." if asks else ""
        return html_of("<figure>{img}<figcaption>The token × step grid: {what}. Each column is one step; a "
                       "dashed outline is still noise, a dot marks what that step wrote, a triangle what it changed."
                       "{then}</figcaption></figure>", img=_png(traj, k, f"Token by step grid of {what}, step {k}"),
                       what=what, then=then)
    if view.kind == "validity":
        curve = validity() if validity is not None else exact_validity_curve(models["masked"])
        steps = list(curve)
        chart = SvgChart(xlim=(-0.5, len(steps) - 0.5), ylim=(0, 1), label="Exact valid mass against steps T",
                         width=560, height=260, xlabel="steps T (" + ", ".join(map(str, steps)) + ")",
                         ylabel="valid", integer_x=True)
        chart.bars(list(range(len(steps))), [curve[T] for T in steps], "#332288",
                   titles=[f"T = {T}: {curve[T]:.3f}" for T in steps])
        rows = [{"steps T": T, "exact valid mass": f"{curve[T]:.3f}"} for T in steps]
        return html_of("<figure>{chart}{table}</figure>", chart=chart.markup(),
                       table=_table(rows, "The masked model, ancestral sampler, exact over all 216 sentences"))
    if view.kind == "strategies":
        table = strategies() if strategies is not None else strategy_table(models["masked"])
        rows = [{"strategy": name, **cols} for name, cols in table.items()]
        return html_of("<figure>{t}</figure>", t=_table(rows, "2000 samples per strategy, 6 steps"))
    if view.kind == "compare":
        rows = compare.summary_rows(compare.load_results(), 3)
        return html_of("<figure>{t}</figure>", t=_table(rows, "The three variants at 3 steps"))
    if view.kind == "train":
        return Markup("<p class='try'>(In the app: a masked model trains live, in about 10 seconds.)</p>")
    return Markup("")


def question_block(question_id: str) -> Markup:
    """A question with its choices and lines to answer on: never its answer."""
    q = QUESTIONS[question_id]
    choices = join([html_of("<li>{c}</li>", c=c) for c in q.choices])
    return html_of("<div class='question'><p><strong>Predict first:</strong> {p}</p><ul>{c}</ul>"
                   "<p>Why?</p><div class='lines'></div><div class='lines'></div></div>", p=q.prompt, c=choices)


def handout_html(lesson_no: int, models: dict, validity=None, strategies=None) -> str:
    """Lesson `lesson_no` (1-based) as one printable HTML page."""
    lesson = LESSONS[lesson_no - 1]
    steps = []
    for i, step in enumerate(lesson.steps, start=1):
        steps.append(html_of(
            "<section><h2>Step {i} of {n}</h2><p>{text}</p>{figure}{try_this}{question}</section>",
            i=i, n=len(lesson.steps), text=step.text,
            figure=step_figure(step.view, models, validity, strategies, asks=bool(step.question)),
            try_this=html_of("<p class='try'>Try this in the app: {t}</p>", t=step.try_this) if step.try_this
            else Markup(""), question=question_block(step.question) if step.question else Markup("")))
    title = f"Lesson {lesson_no}: {lesson.title}"
    return html_of(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><style>{css}</style></head><body>"
        "<main><h1>{title}</h1><p>Diffusion LM visualiser · a handout: the lesson's text and figures, the questions "
        "without their answers.</p><button class='print' type='button' onclick='window.print()'>Print / save as PDF"
        "</button>{steps}</main></body></html>", title=title, css=Markup(CSS), steps=join(steps))
