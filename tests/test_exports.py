"""Slide exports: a PNG per step and a GIF of all steps show what the trajectory says, in the pages' colours."""

import dataclasses
import io
import random

import pytest
from PIL import Image

from dlm_core.render import cells, exports, palette
from dlm_core.studies import training
from dlm_core.trajectory import StepRecord, Trajectory
from dlm_core.variants.registry import VARIANTS

STEPS = {"masked": 6, "uniform": 12, "gaussian": 24}


def rgb(colour: str) -> tuple[int, int, int]:
    return exports._rgb(colour)


@pytest.fixture(scope="module", params=list(STEPS))
def traj(request):
    model, _ = training.load_checkpoint(training.default_checkpoint(request.param))
    return VARIANTS[request.param].trajectory(model, STEPS[request.param], 1)


@pytest.fixture(scope="module")
def masked_traj():
    model, _ = training.load_checkpoint(training.default_checkpoint("masked"))
    return VARIANTS["masked"].trajectory(model, 6, 2)


def real_like(n: int = 300, steps: int = 40, prompt: int = 20, seed: int = 0) -> Trajectory:
    """A hand-built trajectory shaped like a real model's: a dict vocab of odd tokens, a long mask token, a
    prompt, blocks, and a few positions committed per step."""
    rng = random.Random(seed)
    words = ["Ġthe", "Ġcat", "Ċ", "▁sat", "Ġa", ".", "<|start_header_id|>", "Ġextraordinarily", "猫", "😀",
             "Ġ", "\t", "Ġhello"]
    vocab = {str(100 + j): w for j, w in enumerate(words)}
    mask = 5
    vocab[str(mask)] = "<|mdm_mask|>"
    tokens = [100 + rng.randrange(len(words)) for _ in range(prompt)] + [mask] * (n - prompt)
    initial = list(tokens)
    order = list(range(prompt, n))
    rng.shuffle(order)
    per = -(-len(order) // steps)
    records = []
    for k in range(steps):
        committed = order[k * per:(k + 1) * per]
        for i in committed:
            tokens[i] = 100 + rng.randrange(len(words))
        records.append(StepRecord(step=k + 1, t=1 - k / steps, s=1 - (k + 1) / steps, tokens=list(tokens),
                                  committed=committed))
    return Trajectory(variant="real", vocab=vocab, mask_id=mask, initial=initial, records=records,
                      settings={"model": "some-org/some-diffusion-LM", "gen_length": n - prompt},
                      fixed=list(range(prompt)), block_length=64, gen_start=prompt)


def gif_frames(data: bytes):
    """(size, duration ms, RGB image) of every frame, and the loop count."""
    im = Image.open(io.BytesIO(data))
    assert im.format == "GIF"
    frames = []
    for k in range(im.n_frames):
        im.seek(k)
        frames.append((im.size, im.info.get("duration"), im.convert("RGB")))
    return frames, im.info.get("loop")


def assert_chips_show_states(image, layout, states):
    """Every chip shows its state's fill: at the middle of its left padding, and as its most common colour."""
    assert image.size == layout.size
    for i, state in enumerate(states):
        fill = rgb(palette.STATES[state][0])
        assert image.getpixel(layout.fill_points[i]) == fill, (i, state)
        counts = image.crop(layout.chip_boxes[i]).getcolors(maxcolors=1 << 16)
        assert max(counts)[1] == fill, (i, state)


def test_the_gif_has_one_frame_per_step_with_the_asked_durations(traj):
    T = traj.n_steps
    frames, loop = gif_frames(exports.trajectory_gif(traj, interval_s=0.5, hold_last_s=1.5))
    assert len(frames) == T + 1
    assert loop == 0
    assert {size for size, _, _ in frames} == {exports.stage_layout(traj).size}
    assert [d for _, d, _ in frames] == [500] * T + [1500]
    default, _ = gif_frames(exports.trajectory_gif(traj))
    assert [d for _, d, _ in default] == [800] * T + [2000]


def test_every_gif_frame_shows_that_steps_states(traj):
    """The GIF stores only what changed between frames; decoded, frame k still shows step k."""
    layout, states = exports.stage_layout(traj), cells.cell_states(traj)
    frames, _ = gif_frames(exports.trajectory_gif(traj))
    for k, (_, _, image) in enumerate(frames):
        assert_chips_show_states(image, layout, states[k])


def test_the_png_of_a_step_shows_its_chips_and_grid(traj):
    layout, states = exports.stage_layout(traj), cells.cell_states(traj)
    T = traj.n_steps
    assert len(layout.chip_boxes) == traj.length and len(layout.col_edges) == T + 2
    for k in (0, T // 2, T):
        image = Image.open(io.BytesIO(exports.step_png(traj, k)))
        assert image.format == "PNG"
        image = image.convert("RGB")
        assert_chips_show_states(image, layout, states[k])
        for col in range(T + 1):
            for i in range(traj.length):
                x0, y0, x1, y1 = layout.cell_box(i, col)
                point = (x0 + max(1, (x1 - x0) // 5), y0 + max(1, (y1 - y0) // 5))  # clear of text and outlines
                expected = palette.STATES[states[col][i]][0] if col <= k else exports.WHITE
                assert image.getpixel(point) == rgb(expected), (k, col, i)


def test_frames_of_one_trajectory_share_one_size(traj):
    sizes = {exports.stage_frame(traj, k).size for k in range(traj.n_steps + 1)}
    assert sizes == {exports.stage_layout(traj).size}
    assert exports.stage_frame(traj, 0).mode == "RGB"


def test_a_masked_run_starts_with_six_masks_and_ends_with_none(masked_traj):
    layout, T = exports.stage_layout(masked_traj), masked_traj.n_steps
    mask_fill = rgb(palette.STATES["mask"][0])
    first, last = exports.stage_frame(masked_traj, 0), exports.stage_frame(masked_traj, T)
    assert [first.getpixel(p) for p in layout.fill_points] == [mask_fill] * 6
    assert all(last.getpixel(p) != mask_fill for p in layout.fill_points)
    # the caption changes with k, and k outside 0 .. T is clamped rather than an error
    assert exports.stage_frame(masked_traj, T + 5).tobytes() == last.tobytes()
    assert exports.stage_frame(masked_traj, -1).tobytes() == first.tobytes()
    assert first.tobytes() != exports.stage_frame(masked_traj, 1).tobytes()


def test_pinned_positions_get_a_black_outline(masked_traj):
    pinned = dataclasses.replace(masked_traj, fixed=[2])
    layout = exports.stage_layout(pinned)
    image = exports.stage_frame(pinned, pinned.n_steps)
    black = rgb(palette.PROMPT_OUTLINE)
    for i, (x0, y0, _x1, y1) in enumerate(layout.chip_boxes):
        assert (image.getpixel((x0 + 1, (y0 + y1) // 2)) == black) == (i == 2), i
    legend = [state for state, _ in layout.legend_boxes]
    assert legend == cells.legend_states(pinned) + ["pinned"]
    assert [state for state, _ in exports.stage_layout(masked_traj).legend_boxes] == cells.legend_states(
        masked_traj)


def test_identical_frames_are_not_merged(masked_traj, monkeypatch):
    """Two equal frames in a row stay two frames (Pillow's own writer would merge them)."""
    still = exports.stage_frame(masked_traj, 0)
    monkeypatch.setattr(exports._Stage, "frame", lambda self, k: still)
    frames, _ = gif_frames(exports.trajectory_gif(masked_traj, interval_s=0.3, hold_last_s=1.0))
    assert len(frames) == masked_traj.n_steps + 1
    assert [d for _, d, _ in frames] == [300] * masked_traj.n_steps + [1000]
    assert all(image.tobytes() == frames[0][2].tobytes() for _, _, image in frames)


def test_a_real_model_trajectory_stays_within_bounds():
    traj = real_like()
    layout = exports.stage_layout(traj)
    assert layout.width == 1280 and layout.height <= 2500
    x0, y0, x1, y1 = layout.grid_box
    assert x1 <= layout.width and y1 - y0 <= exports.MAX_GRID_H and layout.cell_font == 0
    assert all(0 <= b[0] < b[2] <= layout.width and b[3] <= y0 for b in layout.chip_boxes)
    states = cells.cell_states(traj)
    for k in (0, 17, traj.n_steps):
        image = exports.stage_frame(traj, k)
        assert image.size == layout.size
        assert_chips_show_states(image, layout, states[k])
    black = rgb(palette.PROMPT_OUTLINE)
    assert all(image.getpixel((b[0] + 1, (b[1] + b[3]) // 2)) == black for b in layout.chip_boxes[:20])
    frames, _ = gif_frames(exports.trajectory_gif(traj))
    assert len(frames) == traj.n_steps + 1
    assert {size for size, _, _ in frames} == {layout.size}
    assert_chips_show_states(frames[-1][2], layout, states[-1])


def test_a_long_real_run_still_fits_one_slide():
    traj = real_like(n=500, steps=500, prompt=30, seed=1)
    layout = exports.stage_layout(traj)
    assert layout.height <= 2500
    assert exports.stage_frame(traj, 250).size == layout.size
    assert Image.open(io.BytesIO(exports.step_png(traj, 500))).size == layout.size


def test_unit_labels_are_short_printable_lines():
    traj = real_like(n=30, steps=3, prompt=2)
    assert exports.unit_label(traj, 5) == exports.REAL_MASK_LABEL
    assert exports.unit_label(traj, 100) == "the"  # Ġthe: the leading-space marker goes
    assert exports.unit_label(traj, 102) == "\\n"
    assert exports.unit_label(traj, 999) == "#999"  # not in the vocab: no KeyError
    assert exports.unit_label(traj, 110) == "·"  # a bare space
    long = exports.unit_label(traj, 106)
    assert len(long) == exports.MAX_LABEL_CHARS and long.endswith("…")
    assert all(ch.isprintable() for tok in range(100, 113) for ch in exports.unit_label(traj, tok))
