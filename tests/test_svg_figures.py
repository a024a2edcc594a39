"""The SVG / HTML figures under the stages show the trajectory's own numbers, escaped."""

import copy
import html
import re
from functools import cache

import numpy as np
import pytest

from dlm_core.render import cells, palette, svg_figures
from dlm_core.render.svg_chart import VIRIDIS, SvgChart, ink_on, nice_ticks, viridis
from dlm_core.studies import training
from dlm_core.variants.registry import VARIANTS

EVIL = "<img src=x onerror=alert(1)>"


@cache
def shipped_run(variant: str):
    model, _ = training.load_checkpoint(training.default_checkpoint(variant))
    return model, VARIANTS[variant].trajectory(model, 6 if variant == "masked" else 12, 3)


@pytest.fixture(params=["masked", "uniform", "gaussian"])
def run(request):
    return shipped_run(request.param)


def titles(markup: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r"<title>(.*?)</title>", markup)]


def evil_vocab(traj):
    """The same trajectory with every unit's text replaced by HTML (as a model's vocabulary might hold)."""
    bad = copy.copy(traj)
    bad.vocab = [f"{EVIL}{i}" for i in range(len(traj.vocab))]
    return bad


def test_viridis_hits_its_stops_and_clips():
    assert [viridis(i / 9) for i in range(10)] == VIRIDIS
    assert viridis(-3) == VIRIDIS[0] and viridis(7) == VIRIDIS[-1] and viridis(float("nan")) == VIRIDIS[0]
    mid = viridis(1 / 18)  # half-way between the first two stops
    assert mid == "#{:02x}{:02x}{:02x}".format(*(round((a + b) / 2) for a, b in [(0x44, 0x48), (0x01, 0x28),
                                                                              (0x54, 0x78)]))
    assert ink_on(0.1) == "#FFFFFF" and ink_on(0.9) == "#000000"


def test_ticks_are_round_numbers_covering_the_range():
    assert nice_ticks(0, 1) == [0, 0.2, 0.4, 0.6, 0.8, 1.0]
    assert nice_ticks(0.5, 6.5, n=7, integer=True) == [1, 2, 3, 4, 5, 6]
    assert nice_ticks(0, 24, integer=True) == [0, 5, 10, 15, 20]
    assert nice_ticks(3, 3) == [3]


def test_the_chart_maps_data_onto_the_plot_area():
    c = SvgChart((0, 10), (0, 1), "test", width=200, height=100, margin=(20, 10, 5, 15))
    assert (c.px(0), c.px(10), c.px(5)) == (20, 190, 105)
    assert (c.py(0), c.py(1)) == (85, 5)  # y grows upwards
    c.points([5], [0.5], "#000000", titles=["<b>x</b>"], labels=["<i>"])
    out = c.markup()
    assert out.startswith("<div") and "aria-label='test'" in out and "<b>" not in out and "&lt;i&gt;" in out
    assert titles(out) == ["<b>x</b>"]


def test_the_distribution_shows_the_records_probabilities(run):
    _, traj = run
    k = 2
    rec = traj.records[k - 1]
    pos = next(i for i in range(traj.length) if rec.topk_ids[i])
    out = svg_figures.distribution_html(traj, k, pos)
    widths = [float(w) for w in re.findall(r"width:([0-9.]+)%;background", out)]
    assert widths == [round(100 * float(p), 1) for p in rec.topk_probs[pos]]
    shown = [html.unescape(x) for x in re.findall(r"text-overflow:ellipsis'>(.*?)</span>", out)]
    assert shown == [traj.token_text(i) for i in rec.topk_ids[pos]]
    outline = r"border:3px solid #000000;box-sizing:border-box'><span style='display:block;height:100%;width:"
    outlined = re.findall(outline + r"([0-9.]+)%", out)  # the width of the outlined bar
    shown_after = cells.display_tokens(traj, k)[pos]  # the unit on the stage after step k (nearest, Gaussian)
    assert outlined == ([f"{100 * float(rec.topk_probs[pos][rec.topk_ids[pos].index(shown_after)]):.1f}"]
                        if shown_after in rec.topk_ids[pos] else [])


def test_the_unmasking_order_is_the_commit_step():
    _, traj = shipped_run("masked")  # an absorbing variant: each position is committed once
    for k in (0, 3, traj.n_steps):
        out = svg_figures.order_html(traj, k)
        shown = re.findall(r"padding:4px'>(.*?)</div>", out)
        expect = ["–" if s is None or s > k else str(s) for s in traj.commit_step()]
        assert shown == expect


def test_confidence_points_are_the_committed_scores(run):
    _, traj = run
    k = traj.n_steps
    out = svg_figures.confidence_svg(traj, k)
    expect = [f"step {r.step}: position {i + 1} = {traj.token_text(r.tokens[i])}, score {r.confidence[i]:.3f}"
              for r in traj.records for i in r.committed
              if i < len(r.confidence) and r.confidence[i] is not None and np.isfinite(r.confidence[i])]
    assert titles(out) == expect and out.count("<circle") == len(expect)


def test_changes_are_the_stage_states(run):
    _, traj = run
    out = svg_figures.changes_svg(traj, 4)
    states = cells.cell_states(traj)
    assert titles(out) == [f"step {j}: {states[j].count('changed')} positions changed"
                           for j in range(1, traj.n_steps + 1)]
    assert out.count(palette.STATES["changed"][0]) == 4  # the steps up to k in colour, the rest grey


def test_embedding_paths_end_at_each_positions_nearest_unit():
    model, traj = shipped_run("gaussian")  # the variant with an embedding space
    projection = VARIANTS["gaussian"].embedding_projection(model)
    out = svg_figures.embedding_paths_svg(traj, 5, *projection)
    nearest = cells.display_tokens(traj, 5)
    ends = [t for t in titles(out) if t.startswith("position ")]
    assert ends == [f"position {i + 1} at step 5: nearest {traj.token_text(nearest[i])}" for i in range(traj.length)]
    assert out.count("<polyline") == traj.length


def test_forward_views_show_the_marginals_and_the_schedule():
    from dlm_core.studies import forward
    from dlm_core.toy_language import encode

    x0 = encode(forward.PRESETS[0])
    view = forward.forward_view("uniform", x0, 0.3, seed=0, schedule="linear", model=None)
    out = svg_figures.marginals_html(view["marginals"], x0, view["marginal_labels"])
    cells = [float(p) for p in re.findall(r"→ [^:]*: ([0-9.]+)'", out)]
    assert np.allclose(cells, np.round(np.asarray(view["marginals"], dtype=float), 3).ravel())
    curve = forward.schedule_curve("uniform", "linear", None)
    sched = svg_figures.schedule_svg(curve, 0.3)
    assert titles(sched) == ["α_t (still clean) at t = 0.30: 0.700"]


def test_text_from_a_vocabulary_is_never_live_html(run):
    model, traj = run
    bad = evil_vocab(traj)
    outs = [svg_figures.distribution_html(bad, 2, 0), svg_figures.confidence_svg(bad, bad.n_steps),
            svg_figures.changes_svg(bad, 2)]
    if traj.mask_id is not None:
        outs.append(svg_figures.order_html(bad, bad.n_steps))
    projection = VARIANTS[traj.variant].embedding_projection(model)
    if projection is not None:
        outs.append(svg_figures.embedding_paths_svg(bad, 3, *projection))
    for out in outs:
        assert "<img" not in out and "onerror=alert" not in out.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    assert any("&lt;img src=x onerror=alert(1)&gt;" in out for out in outs)
