"""Each state's mark besides its colour, in the pictures (PNG / GIF frames) and the HTML chips: a dashed
outline for a mask, a dot, a triangle, a strike; committed earlier plain. Read back from the pixels."""

import pytest
from PIL import ImageOps

from dlm_core.render import cells, chips, exports, palette
from dlm_core.render.marks import _rgb
from dlm_core.studies import training
from dlm_core.variants.registry import VARIANTS


@pytest.fixture(scope="module")
def remasking():
    """A masked run with ReMDM remasking: masks, commits, earlier commits and re-masks in one frame."""
    model, _ = training.load_checkpoint(training.default_checkpoint("masked"))
    for seed in range(40):
        traj = VARIANTS["masked"].trajectory(model, 8, seed, strategy="ancestral", remask_eta=0.5)
        ks = [r.step for r in traj.records if r.remasked and r.committed]
        if ks:
            return traj, ks[0]
    raise AssertionError("no seed re-masks and commits in one step")


def ink_pixels(image, box, ink: str) -> list[tuple[int, int]]:
    x0, y0, x1, y1 = box
    want = _rgb(ink)
    return [(x, y) for x in range(x0, x1) for y in range(y0, y1) if image.getpixel((x, y)) == want]


def test_every_cell_of_the_png_carries_its_states_mark(remasking):
    traj, k = remasking
    layout, states = exports.stage_layout(traj), cells.cell_states(traj)
    image = exports.stage_frame(traj, k)
    seen = set()
    for i in range(traj.length):
        state = states[k][i]
        seen.add(state)
        x0, y0, x1, y1 = layout.cell_box(i, k)
        w, h = x1 - x0, y1 - y0
        mark, _, ink, _ = palette.MARKS[state]
        corner = ink_pixels(image, (x0 + w // 2, y0, x1, y0 + h // 2), ink or "#000000")
        middle = ink_pixels(image, (x0 + 4, y0 + h // 2 - 1, x1 - 4, y0 + h // 2 + 2), ink or "#000000")
        rim = ink_pixels(image, (x0, y0, x1, y0 + 5), ink or "#000000")
        if mark in ("dot", "triangle"):
            assert corner, (i, state)
        elif mark == "strike":
            assert len(middle) >= 6, (i, state)
        elif mark == "outline":
            assert len(rim) >= w // 4, (i, state)  # dashes along the top
        else:
            assert not corner and not rim, (i, state)  # plain: white text, no black mark
    assert {"mask", "committed_now", "committed_earlier", "remasked"} <= seen


def test_in_greyscale_every_state_still_reads_differently(remasking):
    """Fill grey and mark together: no two states the same once the colours are gone."""
    traj, k = remasking
    layout, states = exports.stage_layout(traj), cells.cell_states(traj)
    grey = ImageOps.grayscale(exports.stage_frame(traj, k))
    signature = {}
    for i in range(traj.length):
        x0, y0, x1, y1 = layout.cell_box(i, k)
        fill = grey.getpixel((x0 + (x1 - x0) // 5, y0 + (y1 - y0) // 5))
        mark = palette.MARKS[states[k][i]][0]
        signature.setdefault(states[k][i], (fill // 24, mark))
    assert len(set(signature.values())) == len(signature), signature


def test_html_chips_and_legend_carry_the_marks():
    legend = chips.legend_html()
    assert f"3px dashed {palette.MARKS['mask'][2]}" in legend
    assert "●" in legend and "▲" in legend and "line-through" in legend
    html = chips.chips_html(["dog", "s"], ["committed_earlier", "committed_now"])
    assert html.count("aria-hidden") == 1 and "●" in html  # the glyph is a picture: a screen reader skips it
