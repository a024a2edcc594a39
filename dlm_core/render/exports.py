"""Slide-ready pictures of a Trajectory: one PNG per step and an animated GIF of all steps. No Streamlit here.

A frame shows, top to bottom: a caption (step k of T, variant, model), the sequence after k steps as coloured
chips, the token x step grid up to column k and the legend. The colours are the pages' own (render/palette.STATES),
each with its state's mark (render/marks: a dashed outline, a dot, a triangle, a strike); text uses Pillow's
embedded, scalable font. Every frame of one trajectory (at one width) has the same layout, `stage_layout`, so
frames can be stacked into a GIF and tests can find each chip and cell.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from dlm_core.render.cells import cell_states, display_tokens, legend_states
from dlm_core.render.marks import INK, MUTED, TRACK, WHITE, _rgb, draw_mark
from dlm_core.render.palette import MARKS, PROMPT_OUTLINE, STATE_ORDER, STATES
from dlm_core.trajectory import Trajectory

MAX_CHIPS_H = 800  # px: the sequence's chips shrink (smaller font) to stay within this height
MAX_GRID_H = 1100  # px: the grid's rows shrink (down to 1-2 px, no text) to stay within this height
MAX_LABEL_CHARS = 14  # longer units are cut with an ellipsis
REAL_MASK_LABEL = "[MASK]"  # real models' mask tokens (e.g. <|mdm_mask|>) are long: one short label for all


@lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(6, int(size)))


def _text_w(text: str, size: int) -> float:
    return _font(size).getlength(text)


def unit_label(traj: Trajectory, token: int) -> str:
    """The text a chip or cell shows for a unit: printable, one line, at most MAX_LABEL_CHARS characters."""
    if traj.is_real_text and traj.mask_id is not None and int(token) == int(traj.mask_id):
        return REAL_MASK_LABEL
    try:
        text = str(traj.token_text(token))
    except (KeyError, IndexError, TypeError, ValueError):
        text = f"#{token}"
    if traj.is_real_text:  # byte-level BPE / SentencePiece markers
        text = text.replace("Ġ", " ").replace("▁", " ").replace("Ċ", "\n").replace("ĉ", "\t")
    text = text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    text = "".join(ch if ch.isprintable() else "?" for ch in text).strip() or "·"
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


@dataclass
class StageLayout:
    """Where everything of a stage frame is drawn (pixels; boxes are (x0, y0, x1, y1), x1 / y1 exclusive)."""

    width: int
    height: int
    scale: float
    caption_y: int  # centre line of the caption
    bar_box: tuple[int, int, int, int]  # the progress bar under the caption
    chip_font: int
    chip_pad: int
    chip_outline: int
    chip_boxes: list[tuple[int, int, int, int]]  # one per position
    fill_points: list[tuple[int, int]]  # per chip, a pixel showing only its fill (middle of its left padding)
    grid_title_y: int
    header_y: int  # centre line of the step numbers above the grid
    row_edges: list[int]  # n + 1 y coordinates: row i spans row_edges[i] .. row_edges[i + 1] - gap
    col_edges: list[int]  # T + 2 x coordinates: column c spans col_edges[c] .. col_edges[c + 1] - gap
    gap: int
    cell_font: int  # 0: no text in the cells
    col_stride: int  # step numbers drawn every col_stride columns
    row_stride: int  # position numbers drawn every row_stride rows
    label_font: int
    legend_font: int
    legend_boxes: list[tuple[str, tuple[int, int, int, int]]]  # (state or "pinned", box)

    @property
    def grid_box(self) -> tuple[int, int, int, int]:
        return self.col_edges[0], self.row_edges[0], self.col_edges[-1], self.row_edges[-1]

    def cell_box(self, i: int, col: int) -> tuple[int, int, int, int]:
        """The box of position i's cell in column col (step col)."""
        return (self.col_edges[col], self.row_edges[i],
                self.col_edges[col + 1] - self.gap, self.row_edges[i + 1] - self.gap)

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def _wrap(widths: list[int], x0: int, x1: int, gap: int) -> list[tuple[int, int]]:
    """(line, x) of each item laid out left to right in [x0, x1), wrapping onto new lines."""
    out, line, x = [], 0, x0
    for w in widths:
        if x > x0 and x + w > x1:
            line, x = line + 1, x0
        out.append((line, x))
        x += w + gap
    return out


def _nice_stride(unit_px: float, need_px: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 25, 50, ... with stride * unit_px >= need_px."""
    for mult in (1, 10, 100, 1000, 10000, 100000):
        for base in (1, 2, 5) if mult == 1 else (1, 2, 2.5, 5):
            stride = int(base * mult)
            if stride * max(unit_px, 1e-6) >= need_px:
                return stride
    return 1000000


class _Stage:
    """Everything one trajectory's frames share (layout, labels, the fully drawn grid); `frame(k)` draws step k."""

    def __init__(self, traj: Trajectory, width: int = 1280):
        self.traj = traj
        width = max(320, int(width))
        s = width / 1280
        n, T = traj.length, traj.n_steps
        ncols = T + 1
        self.states = cell_states(traj)
        self.tokens = [display_tokens(traj, k) for k in range(ncols)]
        label_of: dict[int, str] = {}
        for row in self.tokens:
            for tok in row:
                if tok not in label_of:
                    label_of[tok] = unit_label(traj, tok)
        self.label_of = label_of
        self.fixed = sorted({int(i) for i in traj.fixed if 0 <= int(i) < n})
        margin = round(24 * s)
        y = margin

        # caption and progress bar
        caption_font = round(32 * s)
        caption_y = y + caption_font // 2 + 2
        y += caption_font + round(10 * s)
        bar_box = (margin, y, width - margin, y + max(4, round(8 * s)))
        y = bar_box[3] + round(22 * s)

        # the sequence's chips: one fixed width per position (its widest unit over all steps), so that chips
        # never move between frames; the font shrinks until the wrapped chips fit MAX_CHIPS_H
        per_pos = [sorted({label_of[row[i]] for row in self.tokens}) for i in range(n)]
        sizes = (44, 36, 30, 24, 20) if n <= 16 else (26, 22, 18, 15, 13, 11, 10)
        for fs in sizes:
            fs = max(8, round(fs * s))
            outline = max(2, round(fs / 9))
            pad = max(outline + 4, round(0.5 * fs))  # room for a corner mark beside the unit
            chip_h = round(1.55 * fs) + 2 * outline
            gap = max(4, round(0.3 * fs))
            widths = [max(chip_h, round(max(_text_w(t, fs) for t in labels)) + 2 * pad) for labels in per_pos]
            placed = _wrap(widths, margin, width - margin, gap)
            lines = placed[-1][0] + 1 if placed else 1
            chips_h = lines * chip_h + (lines - 1) * gap
            if chips_h <= MAX_CHIPS_H:
                break
        shift = 0
        if placed and lines == 1:  # a single line of chips is centred
            shift = (width - margin - (placed[-1][1] + widths[-1])) // 2
        chip_boxes = [(x + shift, y + line * (chip_h + gap), x + shift + w, y + line * (chip_h + gap) + chip_h)
                      for (line, x), w in zip(placed, widths)]
        fill_points = [(b[0] + outline + max(1, (pad - outline) // 2), (b[1] + b[3]) // 2) for b in chip_boxes]
        y += chips_h + round(30 * s)

        # the grid: title, step numbers, position numbers in a left gutter, cells
        label_font = max(10, round(18 * s))
        grid_title_y = y + label_font // 2
        y += label_font + round(10 * s)
        header_y = y + label_font // 2
        y += label_font + round(8 * s)
        row_name = (lambda i: f"pos {i + 1}") if n <= 16 else (lambda i: str(i + 1))
        gutter = round(max([_text_w(row_name(i), label_font) for i in (0, max(n - 1, 0))]) + 12 * s)
        x0 = margin + gutter
        cell_w = min((width - margin - x0) / ncols, 160 * s)
        cell_h = 46 * s if n <= 16 else min(46 * s, MAX_GRID_H / max(n, 1))
        col_edges = [x0 + round(c * cell_w) for c in range(ncols + 1)]
        row_edges = [y + round(i * cell_h) for i in range(n + 1)]
        small = min(cell_w, cell_h)
        grid_gap = 2 if small >= 10 else 1 if small >= 4 else 0
        cell_font = 0
        if cell_h >= 14 and cell_w - grid_gap >= 16 and n * ncols <= 20000:
            cell_font = min(round(20 * s), int(0.48 * cell_h))
        col_stride = _nice_stride(cell_w, _text_w(str(T), label_font) + 10)
        row_stride = _nice_stride(cell_h, label_font + 3)
        y = row_edges[-1] + round(26 * s)

        # legend: the trajectory's own states, then the prompt outline where there is one
        legend_font = max(10, round(20 * s))
        entries = [(st, STATES[st][2]) for st in legend_states(traj)]
        if self.fixed:
            entries.append(("pinned", "prompt / pinned (outlined)"))
        lpad, lh, lgap = round(0.5 * legend_font), round(1.6 * legend_font), round(0.6 * legend_font)
        corner = [st in MARKS and MARKS[st][0] in ("dot", "triangle") for st, _ in entries]
        lwidths = [round(_text_w(text, legend_font)) + 2 * lpad + (2 * lpad if c else 0) for (_, text), c in
                   zip(entries, corner)]
        lplaced = _wrap(lwidths, margin, width - margin, lgap)
        legend_boxes = [(st, (x, y + line * (lh + lgap), x + w, y + line * (lh + lgap) + lh))
                        for (st, _), (line, x), w in zip(entries, lplaced, lwidths)]
        self.legend_text = [text for _, text in entries]
        lines = lplaced[-1][0] + 1 if lplaced else 0
        y += lines * lh + max(lines - 1, 0) * lgap + margin

        self.layout = StageLayout(
            width=width, height=y, scale=s, caption_y=caption_y, bar_box=bar_box, chip_font=fs, chip_pad=pad,
            chip_outline=outline, chip_boxes=chip_boxes, fill_points=fill_points, grid_title_y=grid_title_y,
            header_y=header_y, row_edges=row_edges, col_edges=col_edges, gap=grid_gap, cell_font=cell_font,
            col_stride=col_stride, row_stride=row_stride, label_font=label_font, legend_font=legend_font,
            legend_boxes=legend_boxes)
        self.caption_font = caption_font
        self.row_name = row_name
        self._chips: dict[tuple, Image.Image] = {}
        self.base = self._draw_base()
        self.grid = self._draw_grid()

    # --- drawn once per trajectory -------------------------------------------------------------------------
    def _draw_base(self) -> Image.Image:
        L, traj = self.layout, self.traj
        im = Image.new("RGB", L.size, WHITE)
        d = ImageDraw.Draw(im)
        lf = _font(L.label_font)
        gx0, gy0, gx1, gy1 = L.grid_box
        n, T = traj.length, traj.n_steps
        d.text((L.bar_box[0], L.grid_title_y),
               f"token x step grid: one row per position, one column per reverse step (0 .. {T})",
               font=lf, fill=MUTED, anchor="lm")
        for c in range(0, T + 1, L.col_stride):
            d.text(((L.col_edges[c] + L.col_edges[c + 1] - L.gap) / 2, L.header_y), str(c), font=lf, fill=MUTED,
                   anchor="mm")
        shown = list(range(L.row_stride - 1, n, L.row_stride))  # positions stride, 2 stride, ... (1-based)
        if L.row_stride == 1 or (L.row_stride - 1) * (L.row_edges[1] - L.row_edges[0]) >= L.label_font + 3:
            shown = sorted({0, *shown})  # and position 1 where it does not crowd the next label
        for i in shown:
            yc = (L.row_edges[i] + L.row_edges[i + 1] - L.gap) / 2
            d.text((gx0 - round(8 * L.scale), yc), self.row_name(i), font=lf, fill=MUTED, anchor="rm")
        lfont = _font(L.legend_font)
        for (st, box), text in zip(L.legend_boxes, self.legend_text):
            fill, fg = STATES["committed_earlier"][:2] if st == "pinned" else STATES[st][:2]
            outline = PROMPT_OUTLINE if st == "pinned" else None
            d.rounded_rectangle(box, radius=round(6 * L.scale), fill=fill, outline=outline,
                                width=max(2, round(3 * L.scale)))
            xc, tw = (box[0] + box[2]) / 2, _text_w(text, L.legend_font)
            d.text((xc, (box[1] + box[3]) / 2), text, font=lfont, fill=fg, anchor="mm")
            if st != "pinned":
                draw_mark(d, box, st, L.scale, strike=(xc - tw / 2, xc + tw / 2), radius=round(6 * L.scale))
        return im

    def _draw_grid(self) -> Image.Image | None:
        """All T + 1 columns, cells coloured by state, with their units where they fit (frames crop it)."""
        L, traj = self.layout, self.traj
        n, ncols = traj.length, traj.n_steps + 1
        gx0, gy0, gx1, gy1 = L.grid_box
        if n == 0 or gx1 <= gx0 or gy1 <= gy0:
            return None
        code = {st: j for j, st in enumerate(STATE_ORDER)}
        colours = np.array([_rgb(STATES[st][0]) for st in STATE_ORDER] + [_rgb(WHITE)], dtype=np.uint8)
        codes = np.full((n + 1, ncols + 1), len(STATE_ORDER), dtype=np.uint8)  # last row / column: gaps
        codes[:n, :ncols] = np.array([[code.get(st, 0) for st in row] for row in self.states], dtype=np.uint8).T

        def pixel_map(edges: list[int], count: int) -> np.ndarray:
            rel = np.asarray(edges) - edges[0]
            px = np.arange(rel[-1])
            idx = np.clip(np.searchsorted(rel, px, side="right") - 1, 0, count - 1)
            return np.where(px >= rel[idx + 1] - L.gap, count, idx)

        rows, cols = pixel_map(L.row_edges, n), pixel_map(L.col_edges, ncols)
        im = Image.fromarray(np.ascontiguousarray(colours[codes[rows[:, None], cols[None, :]]]))
        d = ImageDraw.Draw(im)
        fit: dict[str, int] = {}
        if L.cell_font:
            room = L.col_edges[1] - L.col_edges[0] - L.gap - 8
            for c in range(ncols):
                for i in range(n):
                    text = self.label_of[self.tokens[c][i]]
                    if text not in fit:
                        fit[text] = next((fs for fs in range(L.cell_font, max(9, round(0.7 * L.cell_font)) - 1, -1)
                                          if _text_w(text, fs) <= room), 0)
                    if fit[text]:
                        x0, y0, x1, y1 = L.cell_box(i, c)
                        d.text(((x0 + x1) / 2 - gx0, (y0 + y1) / 2 - gy0), text, font=_font(fit[text]),
                               fill=STATES[self.states[c][i]][1], anchor="mm")
        for c in range(ncols):  # each state's mark (cells under 6 px keep their colour alone)
            for i in range(n):
                state = self.states[c][i]
                if MARKS[state][0]:
                    x0, y0, x1, y1 = L.cell_box(i, c)
                    text = self.label_of[self.tokens[c][i]]
                    tw = _text_w(text, fit[text]) if fit.get(text) else x1 - x0 - 6
                    xc = (x0 + x1) / 2 - gx0
                    draw_mark(d, (x0 - gx0, y0 - gy0, x1 - gx0, y1 - gy0), state, L.scale,
                              strike=(xc - tw / 2, xc + tw / 2))
        return im

    def _chip(self, text: str, state: str, outlined: bool, width: int) -> Image.Image:
        """One chip, drawn once per (unit, state, outline, width) and pasted into every frame that shows it."""
        key = (text, state, outlined, width)
        if key not in self._chips:
            L = self.layout
            fill, fg, _ = STATES[state]
            height = L.chip_boxes[0][3] - L.chip_boxes[0][1]
            tile = Image.new("RGB", (width, height), WHITE)
            d = ImageDraw.Draw(tile)
            radius = max(3, round(L.chip_font / 5))
            d.rounded_rectangle((0, 0, width - 1, height - 1), radius=radius, fill=fill,
                                outline=PROMPT_OUTLINE if outlined else None, width=L.chip_outline)
            d.text((width / 2, height / 2), text, font=_font(L.chip_font), fill=fg, anchor="mm")
            if not (outlined and MARKS[state][0] == "outline"):
                tw = _text_w(text, L.chip_font)
                draw_mark(d, (0, 0, width, height), state, L.scale * L.chip_font / 30,
                          strike=(width / 2 - tw / 2, width / 2 + tw / 2), radius=radius)
            self._chips[key] = tile
        return self._chips[key]

    # --- one frame ------------------------------------------------------------------------------------------
    def frame(self, k: int) -> Image.Image:
        L, traj = self.layout, self.traj
        T = traj.n_steps
        k = max(0, min(int(k), T))
        s = L.scale
        im = self.base.copy()
        d = ImageDraw.Draw(im)

        # caption and progress bar
        margin = L.bar_box[0]
        head = f"step {k} of {T}"
        d.text((margin, L.caption_y), head, font=_font(self.caption_font), fill=INK, anchor="lm")
        parts = [traj.variant or "?"] + ([str(traj.settings["model"])] if traj.settings.get("model") else [])
        tail, room = "   ·   " + "   ·   ".join(parts), L.width - 2 * margin - _text_w(head, self.caption_font)
        tail_font = round(0.8 * self.caption_font)
        while len(tail) > 8 and _text_w(tail, tail_font) > room:
            tail = tail[:-2] + "…" if tail.endswith("…") else tail[:-1] + "…"
        d.text((margin + _text_w(head, self.caption_font), L.caption_y), tail, font=_font(tail_font), fill=MUTED,
               anchor="lm")
        bx0, by0, bx1, by1 = L.bar_box
        d.rectangle((bx0, by0, bx1 - 1, by1 - 1), fill=TRACK)
        if k:
            d.rectangle((bx0, by0, bx0 + round((bx1 - bx0) * k / max(T, 1)) - 1, by1 - 1), fill=INK)

        # the sequence after k steps
        fixed = set(self.fixed)
        for i, box in enumerate(L.chip_boxes):
            tile = self._chip(self.label_of[self.tokens[k][i]], self.states[k][i], i in fixed, box[2] - box[0])
            im.paste(tile, box[:2])

        # the grid up to column k
        if self.grid is not None:
            gx0, gy0, gx1, gy1 = L.grid_box
            im.paste(self.grid.crop((0, 0, L.col_edges[k + 1] - gx0, gy1 - gy0)), (gx0, gy0))
            xk = L.col_edges[k + 1] - L.gap - 1  # right edge of column k
            if L.row_edges[1] - L.row_edges[0] >= 10:  # one outline per prompt / pinned row
                runs = [(i, i) for i in self.fixed]
            else:  # thin rows: one outline around each run of consecutive prompt rows
                runs = []
                for i in self.fixed:
                    if runs and runs[-1][1] == i - 1:
                        runs[-1] = (runs[-1][0], i)
                    else:
                        runs.append((i, i))
            for a, b in runs:
                d.rectangle((gx0 - 1, L.row_edges[a] - 1, xk + 1, L.row_edges[b + 1] - L.gap),
                            outline=PROMPT_OUTLINE, width=2)
            if traj.block_length:  # semi-autoregressive blocks: dashed boundaries
                end = traj.gen_start + int(traj.settings.get("gen_length", traj.length - traj.gen_start))
                dash = max(4, round(8 * s))
                for b in range(traj.gen_start + traj.block_length, min(end, traj.length), traj.block_length):
                    yb = L.row_edges[b] - max(1, L.gap // 2) - 1
                    for xs in range(gx0, gx1, 2 * dash):
                        d.line((xs, yb, min(xs + dash, gx1), yb), fill=INK, width=2)
            w = 3 if L.col_edges[1] - L.col_edges[0] >= 6 else 2  # the current column (and its number)
            top = L.header_y - L.label_font // 2 - 4 if L.col_stride == 1 else gy0 - w
            d.rectangle((L.col_edges[k] - w, top, xk + w, gy1 - L.gap + w - 1), outline=INK, width=w)
        return im


def stage_layout(traj: Trajectory, width: int = 1280) -> StageLayout:
    """Where `stage_frame(traj, k, width)` draws everything (the same for every k)."""
    return _Stage(traj, width).layout


def stage_frame(traj: Trajectory, k: int, width: int = 1280) -> Image.Image:
    """A slide-ready RGB picture of step k (k clamped to 0 .. T): caption, sequence chips, grid, legend."""
    return _Stage(traj, width).frame(k)


def step_png(traj: Trajectory, k: int, width: int = 1280) -> bytes:
    """The PNG of stage_frame(traj, k, width)."""
    buf = io.BytesIO()
    stage_frame(traj, k, width).save(buf, format="PNG")
    return buf.getvalue()


def trajectory_gif(traj: Trajectory, interval_s: float = 0.8, hold_last_s: float = 2.0, width: int = 1280) -> bytes:
    """An animated, looping GIF of steps 0 .. T (exactly T + 1 frames): each shown interval_s, the last
    hold_last_s (written by render/gif, one frame at a time)."""
    from dlm_core.render.gif import write_gif

    return write_gif(_Stage(traj, width), interval_s, hold_last_s)
