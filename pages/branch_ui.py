"""Step in: pick a cell on the stage (or a position), pin it, re-mask it or release its pin, then
continue from the paused step as a branch (dlm_core.branching). Used by the Reverse and Real
pages; the page says how a branch is computed (`make_branch`) and which units can be pinned.
Only layout and session state here."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dlm_core.sampling.branching import MAX_BRANCHES, Edits, parent_pins
from dlm_core.trajectory import Trajectory
from pages import md_escape


def branches(key: str, parent_id: str) -> list[Trajectory]:
    """This session's branches of the run `parent_id` (a new run starts with none)."""
    store = st.session_state.setdefault(f"{key}_branches", {"parent": parent_id, "runs": []})
    if store["parent"] != parent_id:
        store.update(parent=parent_id, runs=[])
        st.session_state.pop(f"{key}_edits", None)
        st.session_state.pop(f"{key}_stage_pick", None)
    return store["runs"]


def run_picker(key: str, runs: list[Trajectory]) -> int:
    """Which run the edit panel, the views and the downloads below the stage follow (0: the original).
    A click on a branch's cell selects that branch."""
    s = st.session_state
    after = s.pop(f"{key}_run_next", None)  # set by the panel's buttons, applied before the widgets exist
    if after is not None:
        s[f"{key}_run"] = after
        s.pop(f"{key}_edit_seed", None)
    pick = s.get(f"{key}_stage_pick")
    if pick is not None and pick.get("seen") is None:  # a new click: follow its lane once
        s[f"{key}_run"] = min(pick["lane"], len(runs) - 1)
    if len(runs) == 1:
        st.session_state[f"{key}_run"] = 0
        return 0
    st.session_state[f"{key}_run"] = min(int(st.session_state.get(f"{key}_run", 0)), len(runs) - 1)
    return st.radio("Run shown below (views and downloads) and edited", range(len(runs)), key=f"{key}_run",
                    horizontal=True, format_func=lambda j: "Original" if j == 0 else f"Branch {j}")


def _pending(key: str) -> dict:
    return st.session_state.setdefault(f"{key}_edits", {})


def edits_for(run: Trajectory, pending: dict) -> Edits:
    """The branch's pins (the run's own, changed by the pending edits) and its re-masked positions."""
    pins, remask = parent_pins(run), []
    for pos, (action, unit) in pending.items():
        pins.pop(pos, None)
        if action == "pin":
            pins[pos] = unit
        elif action == "remask":
            remask.append(pos)
    return Edits(pins=pins, remask=tuple(remask))


def edit_panel(key: str, runs: list[Trajectory], j: int, k: int, positions: list[int],
               unit_choices: Callable[[Trajectory, int, int], list[int]],
               make_branch: Callable[[Trajectory, int, Edits, int], Trajectory | None],
               pin_meaning: str, parse_unit: Callable[[str], int] | None = None,
               infill_link: Callable[[Edits], str] | None = None) -> None:
    """The panel under the stage. `runs`: the original, then its `branches(key, ...)`; `positions`:
    the ones that may be edited (0-based); `unit_choices(run, k, pos)`: the ids offered for a pin, most
    likely first; `make_branch(run, k, edits, seed)`: the branch (None when it failed and said why);
    `parse_unit(text)`: a typed unit's id (ValueError if none); `infill_link(edits)`: a link to check
    the pins against the exact answer."""
    s = st.session_state
    run = runs[j]
    stored = s[f"{key}_branches"]["runs"]  # runs[1:], as kept in the session (see `branches`)
    pick = s.get(f"{key}_stage_pick")
    fresh = pick is not None and pick.get("seen") is None
    name = "the original" if j == 0 else f"branch {j}"
    if fresh:  # a click on the stage opens the panel, and it stays open while the user edits
        s[f"{key}_panel_open"] = True
    with st.expander(f"Step in at step {k}: pin, re-mask, then continue as a branch",
                     expanded=bool(s.get(f"{key}_panel_open")), icon=":material/call_split:"):
        st.caption("Pause the stage at a step and click a unit (or choose a position here). A **pin** holds a "
                   f"position at a unit of your choice; {pin_meaning} **Re-mask** sends a position back to noise "
                   "so the model fills it again; **release** lets a pinned position move. Then continue from this "
                   f"step: the new branch keeps {name}'s first {k} steps and is drawn under it on the stage.")
        if k >= run.n_steps:
            st.info(f"Step {k} is the end of the run: there is no step left to continue. Scrub back to an earlier "
                    "step (or click a cell of an earlier column).")
            return
        if fresh:
            s[f"{key}_edit_pos"] = pick["pos"] if pick["pos"] in positions else positions[0]
            pick["seen"] = True
        if s.get(f"{key}_edit_pos") not in positions:
            s[f"{key}_edit_pos"] = positions[0]
        c1, c2, c3 = st.columns([1, 1.2, 1.6])
        pos = c1.selectbox("Position", positions, key=f"{key}_edit_pos", format_func=lambda i: str(i + 1))
        held = parent_pins(run)
        actions = ["pin", "remask"] + (["release"] if pos in held else [])
        labels = {"pin": "Pin to a unit", "remask": "Re-mask", "release": "Release the pin"}
        action = c2.radio("Edit", actions, key=f"{key}_edit_action", format_func=labels.get)
        unit = None
        if action == "pin":
            ids = unit_choices(run, k, pos)
            unit = c3.selectbox("Unit", ids, key=f"{key}_edit_unit_{pos}", format_func=run.token_text,
                                help="The model's most likely units at this step come first.")
            if parse_unit is not None:
                typed = c3.text_input("… or type one token", key=f"{key}_edit_typed", max_chars=40)
                if typed.strip():
                    try:
                        unit = parse_unit(typed)
                    except ValueError as e:
                        c3.error(md_escape(e))
                        unit = None
        pending = _pending(key)
        current = {} if action == "pin" and unit is None else {pos: (action, unit)}
        b1, b2 = st.columns(2)
        if b1.button("Keep this edit and edit another position", key=f"{key}_edit_add", icon=":material/add:",
                     disabled=not current):
            pending.update(current)
        if pending and b2.button("Clear the edits", key=f"{key}_edit_clear", icon=":material/clear:"):
            pending.clear()
        chosen = {**pending, **current}  # the kept edits and the one in the form
        if chosen:
            st.markdown(f"**Edits at step {k}:** " + "; ".join(
                f"position {p + 1}: " + (f"pin to “{md_escape(run.token_text(u))}”" if a == "pin" else
                                         "re-mask" if a == "remask" else "release the pin")
                for p, (a, u) in sorted(chosen.items())))
        try:
            edits = edits_for(run, chosen)
        except ValueError as e:
            st.error(md_escape(e))
            return
        d1, d2 = st.columns([1, 2])
        s.setdefault(f"{key}_edit_seed", int(run.settings.get("seed", 0)) + len(runs))
        seed = d1.number_input("Seed of the branch", 0, 10**6, key=f"{key}_edit_seed")
        if d2.button(f"Continue from step {k} as a new branch", type="primary", key=f"{key}_edit_go",
                     icon=":material/call_split:"):
            new = make_branch(run, k, edits, int(seed))
            if new is not None:
                stored.append(new)
                if len(stored) > MAX_BRANCHES:
                    stored.pop(0)
                    st.toast(f"Only the last {MAX_BRANCHES} branches are kept: the oldest was removed.")
                pending.clear()
                s.pop(f"{key}_stage_pick", None)
                s[f"{key}_run_next"] = len(stored)
                st.rerun()
        if infill_link is not None and edits.pins:
            st.markdown(f"[Check these pins against the toy language's exact answer →]({infill_link(edits)})")
        if stored and st.button("Remove all branches", key=f"{key}_edit_drop", icon=":material/delete:"):
            stored.clear()
            s[f"{key}_run_next"] = 0
            st.rerun()
