"""Figures read trajectories faithfully: states, colours and display units."""

import pytest

from dlm_core import toy_language as T
from dlm_core.render import cells, palette, plotly_figures
from dlm_core.studies import training
from dlm_core.variants.registry import VARIANTS


@pytest.fixture(scope="module", params=["masked", "uniform", "gaussian"])
def traj(request):
    model, _ = training.load_checkpoint(training.default_checkpoint(request.param))
    steps = 6 if request.param == "masked" else 12
    return VARIANTS[request.param].trajectory(model, steps, 3)


def test_cell_states_follow_the_records(traj):
    states = cells.cell_states(traj)
    assert len(states) == traj.n_steps + 1 and all(len(row) == 6 for row in states)
    assert states[0] == ["mask"] * 6
    for k in range(1, traj.n_steps + 1):
        rec = traj.records[k - 1]
        if traj.variant == "masked":
            assert {i for i, st in enumerate(states[k]) if st == "committed_now"} == set(rec.committed)
            assert {i for i, st in enumerate(states[k]) if st == "mask"} == {
                i for i, u in enumerate(rec.tokens) if u == T.MASK_ID}
        else:
            prev, now = cells.display_tokens(traj, k - 1), cells.display_tokens(traj, k)
            assert {i for i, st in enumerate(states[k]) if st == "changed"} == {
                i for i in range(6) if prev[i] != now[i]}
    if traj.variant == "gaussian":
        assert cells.display_tokens(traj, traj.n_steps) == traj.records[-1].nearest


def test_grid_uses_the_documented_colours(traj):
    fig = plotly_figures.trajectory_grid(traj, traj.n_steps)
    scale = [c for _, c in fig.data[0].colorscale]
    assert set(scale) == {palette.STATES[s][0] for s in palette.STATE_ORDER}
    assert palette.STATES["changed"][0] == "#D55E00" and palette.STATES["committed_now"][0] == "#E69F00"
    assert palette.STATES["mask"][0] == "#D9D9D9" and palette.STATES["committed_earlier"][0] == "#0072B2"
    texts = [t for tr in fig.data[1:] for t in tr.text]
    assert len(texts) == 6 * (traj.n_steps + 1)


def test_the_legend_comes_from_the_trajectory(traj):
    """The legend lists exactly the states the trajectory's cells use, in one reading order."""
    expected = (["mask", "committed_now", "committed_earlier"] if traj.mask_id is not None
                else ["mask", "changed", "committed_earlier"])
    assert cells.legend_states(traj) == expected
    assert set(expected) == {state for row in cells.cell_states(traj) for state in row}
