"""A lesson as a handout to print or save as PDF: its text, each step's figure as a static picture
(the stage as a PNG of its last step, a chart as SVG, a table), the "try this" lines and the
questions with their choices and room to answer, never the answers. One self-contained HTML file
(no script from outside, every value escaped); the Lessons page offers it for download. No Streamlit."""

from __future__ import annotations

import base64

from dlm_core.classroom.lesson_figures import figure
from dlm_core.classroom.lesson_plan import LESSONS, Step
from dlm_core.classroom.questions import QUESTIONS
from dlm_core.render import exports
from dlm_core.render.safe_html import Markup, html_of, join
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


def step_figure(step: Step, models: dict, lm=None) -> Markup:
    """The figure of one lesson step, static (classroom/lesson_figures computes it, as for the page). A step
    that asks a question shows only what the page shows before the reveal: the stage at the run's start, no
    table, chart or finding."""
    fig = figure(step.view, models, lm)
    asks = bool(step.question)
    parts = []
    if fig.trajectory is not None:
        traj = fig.trajectory.until(step.shown_before) if asks else fig.trajectory
        what = f"the {traj.variant} run of this step, step {traj.n_steps} of {fig.trajectory.n_steps}"
        then = " Shown at its start: the question below is about what happens next." if asks else ""
        parts.append(html_of("<figure>{img}<figcaption>The token × step grid: {what}. Each column is one step; a "
                             "dashed outline is still noise, a dot marks what that step wrote, a triangle what it "
                             "changed.{then}</figcaption></figure>",
                             img=_png(traj, traj.n_steps, f"Token by step grid of {what}"), what=what, then=then))
    if asks:
        return join(parts)
    if fig.chart is not None:
        parts.append(html_of("<figure>{c}</figure>", c=fig.chart))
    if fig.rows:
        parts.append(html_of("<figure>{t}</figure>", t=_table(fig.rows, fig.caption)))
    for label, text in fig.texts:
        parts.append(html_of("<p><strong>{l}:</strong> {t}</p>", l=label, t=text))
    if fig.finding:
        parts.append(html_of("<p class='try'>{f}</p>", f=fig.finding))
    if step.view.kind in ("train", "lab"):
        parts.append(Markup("<p class='try'>(In the app: this step trains models live, in seconds.)</p>"))
    return join(parts)


def question_block(question_id: str) -> Markup:
    """A question with its choices and lines to answer on: never its answer."""
    q = QUESTIONS[question_id]
    choices = join([html_of("<li>{c}</li>", c=c) for c in q.choices])
    return html_of("<div class='question'><p><strong>Predict first:</strong> {p}</p><ul>{c}</ul>"
                   "<p>Why?</p><div class='lines'></div><div class='lines'></div></div>", p=q.prompt, c=choices)


def handout_html(lesson_no: int, models: dict, lm=None) -> str:
    """Lesson `lesson_no` (1-based) as one printable HTML page."""
    lesson = LESSONS[lesson_no - 1]
    steps = []
    for i, step in enumerate(lesson.steps, start=1):
        steps.append(html_of(
            "<section><h2>Step {i} of {n}</h2><p>{text}</p>{figure}{try_this}{question}</section>",
            i=i, n=len(lesson.steps), text=step.text,
            figure=step_figure(step, models, lm),
            try_this=html_of("<p class='try'>Try this in the app: {t}</p>", t=step.try_this) if step.try_this
            else Markup(""), question=question_block(step.question) if step.question else Markup("")))
    title = f"Lesson {lesson_no}: {lesson.title}"
    return html_of(
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'><style>{css}</style></head><body>"
        "<main><h1>{title}</h1><p>Diffusion LM visualiser · a handout: the lesson's text and figures, the questions "
        "without their answers.</p><button class='print' type='button' onclick='window.print()'>Print / save as PDF"
        "</button>{steps}</main></body></html>", title=title, css=Markup(CSS), steps=join(steps))
