"""Contrast and shapes of the states, computed from the one palette (dlm_core/render/palette.py):
text >= 4.5:1 on its fill, marks >= 3:1 on their background, and no two states told apart by colour alone."""

import pytest

from dlm_core.render import palette


def test_contrast_formula_matches_known_values():
    assert palette.contrast("#000000", "#FFFFFF") == pytest.approx(21.0)
    assert palette.contrast("#777777", "#FFFFFF") == pytest.approx(4.48, abs=0.01)
    assert palette.contrast("#828180", "#FFFFFF") == pytest.approx(3.88, abs=0.01)  # Streamlit's caption grey
    assert palette.contrast("#D55E00", "#FFFFFF") == pytest.approx(3.86, abs=0.01)


@pytest.mark.parametrize("state", palette.STATE_ORDER)
def test_state_text_on_its_fill_is_at_least_4_5(state):
    fill, fg, _ = palette.STATES[state]
    assert palette.contrast(fg, fill) >= 4.5, (state, fill, fg, palette.contrast(fg, fill))


@pytest.mark.parametrize("state", palette.STATE_ORDER)
def test_state_mark_on_its_fill_is_at_least_3(state):
    mark, glyph, ink, words = palette.MARKS[state]
    if not mark:
        assert state == "committed_earlier" and words == "plain"
        return
    assert palette.contrast(ink, palette.STATES[state][0]) >= 3, (state, ink)
    assert glyph and words


def test_a_mask_outline_shows_on_the_page_and_prompt_outline_too():
    # the mask's fill is close to white, so its dashed outline is what marks the cell on the page
    assert palette.contrast(palette.MARKS["mask"][2], palette.PAGE) >= 3
    assert palette.contrast(palette.PROMPT_OUTLINE, palette.PAGE) >= 3
    assert palette.contrast(palette.PROMPT_OUTLINE, palette.STATES["committed_earlier"][0]) >= 3


def test_every_state_has_its_own_shape():
    marks = [palette.MARKS[s][0] for s in palette.STATE_ORDER]
    glyphs = [palette.MARKS[s][1] for s in palette.STATE_ORDER if palette.MARKS[s][1]]
    assert len(set(marks)) == len(marks) and len(set(glyphs)) == len(glyphs)
    assert set(palette.MARKS) == set(palette.STATES)


def test_series_colours_show_on_white():
    for c in palette.SERIES + (palette.NEUTRAL,):
        assert palette.contrast(c, palette.PAGE) >= 3, c
