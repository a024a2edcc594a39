"""What a trajectory's cells mean: the unit each position shows after k steps and its state
(render/palette.STATES), the same for the stage, the grid, the chips and the exports. No drawing."""

from __future__ import annotations

from dlm_core.render.palette import LEGEND_ORDER
from dlm_core.trajectory import Trajectory


def display_tokens(traj: Trajectory, k: int) -> list[int]:
    """The units shown after k steps: the sequence, or for the Gaussian variant each position's
    nearest unit (of z_s / alpha_s)."""
    if k > 0 and traj.records[k - 1].nearest is not None:
        return list(traj.records[k - 1].nearest)
    return traj.tokens_at(k)


def cell_states(traj: Trajectory) -> list[list[str]]:
    """states[k][i]: the state of position i after k steps (k = 0: the start)."""
    mask = traj.mask_id
    if mask is None:  # uniform / Gaussian: every step may change any position (self-correction)
        out = [["mask"] * traj.length]
        for k in range(1, traj.n_steps + 1):
            prev, now = display_tokens(traj, k - 1), display_tokens(traj, k)
            out.append(["changed" if a != b else "committed_earlier" for a, b in zip(prev, now)])
        return out
    out = [["mask" if tok == mask else "committed_earlier" for tok in traj.initial]]
    for rec in traj.records:
        row = list(out[-1])
        for i, tok in enumerate(rec.tokens):
            if mask is not None and tok == mask:
                row[i] = "mask"
            elif row[i] in ("mask", "remasked") and i not in rec.committed:
                row[i] = "committed_now"  # written without a commit: a pin set where a branch parts
            elif row[i] in ("committed_now", "changed"):
                row[i] = "committed_earlier"
            elif row[i] == "remasked":
                row[i] = "mask"
        for i in rec.committed:
            row[i] = "committed_now"
        for i in rec.changed:
            row[i] = "changed"
        for i in rec.remasked:
            row[i] = "remasked"
        out.append(row)
    return out


def legend_states(traj: Trajectory) -> list[str]:
    """The states that occur in a trajectory's cells, in the legend's order: its legend."""
    seen = {state for row in cell_states(traj) for state in row}
    return [state for state in LEGEND_ORDER if state in seen]
