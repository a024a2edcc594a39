"""The animated GIF of a trajectory's stage (exports.trajectory_gif calls it): one fixed palette, one
frame at a time, only the rectangle that changed. No Streamlit here."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import GifImagePlugin, Image

from dlm_core.render.marks import INK, MUTED, TRACK, WHITE, _rgb
from dlm_core.render.palette import MARKS, PROMPT_OUTLINE, STATE_ORDER, STATES


def _gif_palette() -> list[tuple[int, int, int]]:
    """The colours frames use: white, the ink greys, every state's fill and text colour, and a few blends of
    each text colour over its background (anti-aliased glyph edges)."""
    pairs = [(STATES[st][1], STATES[st][0]) for st in STATE_ORDER] + [(INK, WHITE), (MUTED, WHITE), (INK, TRACK)]
    out: list[tuple[int, int, int]] = []
    inks = [MARKS[st][2] for st in STATE_ORDER if MARKS[st][2]]
    for c in [WHITE, INK, MUTED, TRACK, PROMPT_OUTLINE, *inks] + [c for pair in pairs for c in pair]:
        if _rgb(c) not in out:
            out.append(_rgb(c))
    for fg, bg in pairs:
        f, b = np.array(_rgb(fg)), np.array(_rgb(bg))
        for a in (1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6):
            rgb = tuple(int(v) for v in np.round(a * f + (1 - a) * b))
            if rgb not in out:
                out.append(rgb)
    return out


def _p_image(indices: np.ndarray) -> Image.Image:
    data = np.ascontiguousarray(indices, dtype=np.uint8)
    return Image.frombytes("P", (data.shape[1], data.shape[0]), data.tobytes())


def write_gif(stage, interval_s: float, hold_last_s: float) -> bytes:
    """An animated, looping GIF of a stage's (exports._Stage) steps 0 .. T: each shown interval_s, the last
    hold_last_s.

    Frames go through one fixed palette and are written one at a time (only the rectangle that changed, the
    unchanged pixels transparent), so memory stays at a frame or two whatever T is, and no frame is ever merged
    into its neighbour. GIF delays are in hundredths of a second: durations round down to 10 ms.
    """
    traj = stage.traj
    colours = _gif_palette()
    flat = [v for rgb in colours for v in rgb]
    quant = Image.new("P", (1, 1))
    quant.putpalette(flat)
    transparent = len(colours)  # the first index no pixel maps to
    bits = max(1, transparent.bit_length())  # a colour table of 2**bits >= len(colours) + 1 entries
    w, h = stage.layout.size
    out = io.BytesIO()
    out.write(b"GIF89a" + struct.pack("<HHBBB", w, h, 0x80 | ((bits - 1) << 4) | (bits - 1), 0, 0))
    out.write(bytes(flat) + bytes(3 * (2**bits - len(colours))))
    out.write(b"!\xff\x0bNETSCAPE2.0\x03\x01" + struct.pack("<H", 0) + b"\x00")  # loop forever
    prev = None
    for k in range(traj.n_steps + 1):
        duration = round(1000 * (hold_last_s if k == traj.n_steps else interval_s))
        cur = np.asarray(stage.frame(k).quantize(palette=quant, dither=Image.Dither.NONE))
        params = {"duration": duration, "disposal": 1}
        if prev is None:
            offset, data = (0, 0), cur
        else:
            changed = cur != prev
            rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
            if rows.size == 0:  # an identical frame: one transparent pixel still makes it a frame
                offset, data = (0, 0), np.full((1, 1), transparent, dtype=np.uint8)
            else:
                y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
                data = np.where(changed[y0:y1, x0:x1], cur[y0:y1, x0:x1], transparent).astype(np.uint8)
                offset = (int(x0), int(y0))
            params["transparency"] = transparent
        for chunk in GifImagePlugin.getdata(_p_image(data), offset=offset, **params):
            out.write(chunk)
        prev = cur
    out.write(b";")
    return out.getvalue()
