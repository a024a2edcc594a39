"""Tokens as coloured chips (inline HTML, every value escaped): the sequence a class reads from
afar and the colour legend. Each chip has its state's mark besides its colour (palette.MARKS)."""

from __future__ import annotations

from dlm_core.render.cells import cell_states, display_tokens
from dlm_core.render.palette import MARKS, PROMPT_OUTLINE, STATE_ORDER, STATES
from dlm_core.render.safe_html import Markup, html_of, join
from dlm_core.trajectory import Trajectory


def legend_html(include=STATE_ORDER, pinned: bool = True) -> Markup:
    """The colour legend, as inline HTML chips."""
    chips = [_chip(STATES[s][2], s) for s in include]
    if pinned:
        chips.append(_chip("prompt / pinned by the user", "committed_earlier", outlined=True))
    return html_of("<div style='display:flex;flex-wrap:wrap;gap:6px'>{chips}</div>", chips=join(chips))


def _chip(text: str, state: str, outlined: bool = False, big: bool = False) -> Markup:
    fill, fg, _ = STATES[state]
    mark, glyph, ink, _ = MARKS[state]
    border = f"3px solid {PROMPT_OUTLINE}" if outlined else f"3px dashed {ink}" if mark == "outline" else \
        "3px solid transparent"
    strike = f"text-decoration:line-through 3px {ink};" if mark == "strike" else ""
    corner = html_of("<span aria-hidden='true' style='font-family:sans-serif;font-size:0.85em;vertical-align:0.1em;"
                     "margin-left:6px;color:{ink}'>{glyph}</span>", ink=ink, glyph=glyph) \
        if mark in ("dot", "triangle") else Markup("")
    return html_of("<span style='background:{fill};color:{fg};border:{border};border-radius:6px;padding:2px 10px;"
                   "font-family:monospace;font-size:{size};white-space:nowrap;{strike}'>{text}{corner}</span>",
                   fill=fill, fg=fg, border=border, size="1.6rem" if big else "0.95rem", text=text, strike=strike,
                   corner=corner)


def chips_html(labels, states, outlined=(), big: bool = True) -> Markup:
    """Units as coloured chips, one state per chip (the view a class reads from afar)."""
    chips = [_chip(w, st, outlined=i in set(outlined), big=big) for i, (w, st) in enumerate(zip(labels, states))]
    return html_of("<div style='display:flex;flex-wrap:wrap;gap:8px;margin:6px 0 10px 0'>{chips}</div>",
                   chips=join(chips))


def sequence_html(traj: Trajectory, k: int, big: bool = True) -> Markup:
    """The sequence after k steps as coloured chips."""
    labels = [traj.token_text(t) for t in display_tokens(traj, k)]
    return chips_html(labels, cell_states(traj)[k], outlined=traj.fixed, big=big)
