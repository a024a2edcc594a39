"""What the browser player draws, computed once from a Trajectory (no Streamlit, no torch).

`stage_data` turns a trajectory into plain JSON: the units shown and the colour state of
every position after every step, the legend, block boundaries, the number of commits per
step and a plain-words note when some steps do nothing. The player (assets/player/) draws
it client side, so scrubbing and playing never ask the server for anything. The same data
replays in the standalone HTML export.
"""

from __future__ import annotations

import hashlib
import json

from dlm_core.render.cells import cell_states, display_tokens
from dlm_core.render.palette import LEGEND_ORDER, MARKS, STATES
from dlm_core.sampling.branching import describe
from dlm_core.trajectory import Trajectory

STATE_KEYS = tuple(STATES)  # a state's code in the data is its index here
MASK_GLYPH = "▢"


def _piece_style(texts: list[str]) -> str:
    """How sub-word pieces join into running text: 'bpe' (a marker starts a word: Ġ or ▁) or
    'wordpiece' (## continues a word)."""
    return "bpe" if any(t[:1] in ("Ġ", "▁") for t in texts) else "wordpiece"


ATTACHED = frozenset(".,;:!?)]}'’%")  # WordPiece punctuation that reads without a space before it
# what follows an apostrophe in an uncased WordPiece text ("i ' ll", "wife ' s"): read joined ("i'll", "wife's")
CONTRACTIONS = frozenset({"s", "ll", "t", "d", "re", "ve", "m", "st"})


def running_text_pieces(texts: list[str], special: set[str] = frozenset()) -> list[str]:
    """Each token's text as it reads in running text (with its leading space), for real models:
    WordPiece's ## pieces and punctuation join the word before them; the texts in `special`
    ([CLS], [SEP], padding) are not words of the sentence and read as nothing."""
    style = _piece_style([t for t in texts if t not in special])
    out = []
    for t in texts:
        if t in special:
            out.append("")
        elif style == "bpe":
            out.append(" " + t[1:] if t[:1] in ("Ġ", "▁") else t)
        elif t.startswith("##"):
            out.append(t[2:])
        else:
            out.append(t if t in CONTRACTIONS or t and all(ch in ATTACHED for ch in t) else " " + t)
    return out


def recomputed_masks(traj: Trajectory) -> list[str] | None:
    """Per step (0: the start), '1' for each position whose hidden state the step's pass computed and '0'
    elsewhere, when the block cache recorded it (sampling/block_cache.py); None when it did not."""
    if not any(r.recomputed is not None for r in traj.records):
        return None
    out = [""]
    for r in traj.records:
        done = set(r.recomputed or ())
        out.append("".join("1" if i in done else "0" for i in range(traj.length)))
    return out


def idle_steps_note(traj: Trajectory) -> str:
    """A plain sentence when a fixed-count strategy runs out of positions before the last step."""
    commits = [len(r.committed) for r in traj.records]
    strategy = traj.settings.get("strategy")
    if traj.mask_id is None or strategy in (None, "ancestral") or not commits:
        return ""
    idle = sum(1 for c in commits if c == 0)
    if idle == 0:
        return ""
    per_block = traj.block_length or traj.length
    return (f"{idle} of the {len(commits)} steps commit nothing: a fixed-count strategy spreads a block's "
            f"positions over the block's steps, one or more per step while any is left, so a block of {per_block} "
            "positions has nothing left to commit in its later steps. Choose fewer steps (or the ancestral "
            "strategy) to see every step do something.")


SPOKEN_MASK = "mask"  # how a screen reader hears a masked position
NEWS = ("committed_now", "changed", "remasked")  # the states a step's text names position by position


def spoken_unit(text: str) -> str:
    """A unit as a screen reader should hear it: sub-word markers dropped, a blank piece named."""
    t = text.replace("Ġ", " ").replace("▁", " ").replace("Ċ", " new line ").strip()
    if len(t) > 2 and t[0] + t[-1] in ("[]", "<>"):  # [PAD], <eos>: the name, not its brackets
        t = t[1:-1].strip("|")
    return t[2:] if t.startswith("##") else t or "blank"


def step_texts(tokens: list[list[int]], states: list[list[str]], words: dict[str, str], mask_id: int | None,
               step_name: str = "step", rows: list[int] | None = None, labels: dict[str, str] | None = None,
               vocab: list[str] | None = None) -> list[str]:
    """The text alternative of every step: what a screen reader says when the step shown changes,
    e.g. "Step 3 of 6: dog, mask, are, mask, friend, s. Committed at this step: position 2, dog."
    `words`: each state's legend label; `rows`: the positions shown (default all); the units' text
    from `labels` ({str(id): text}) or `vocab` (a list)."""
    T = len(tokens) - 1
    rows = list(range(len(tokens[0]))) if rows is None else list(rows)

    def unit(tok: int) -> str:
        if mask_id is not None and tok == mask_id:
            return SPOKEN_MASK
        return spoken_unit(labels[str(tok)] if labels is not None else str(vocab[tok]))

    out = []
    for k in range(T + 1):
        text = f"{step_name[:1].upper()}{step_name[1:]} {k} of {T}: {', '.join(unit(tokens[k][i]) for i in rows)}."
        noise = [i for i in rows if states[k][i] == "mask" and tokens[k][i] != mask_id]
        if noise:  # noise that shows a unit (uniform, Gaussian): say which positions are still noise
            label = words["mask"]
            text += f" {label[:1].upper()}{label[1:]}: position{'s' if len(noise) > 1 else ''} " + \
                ", ".join(str(i + 1) for i in noise) + "."
        if k > 0:
            for state in NEWS:
                at = [i for i in rows if states[k][i] == state]
                if at:
                    label = words[state]
                    text += f" {label[:1].upper()}{label[1:]}: " + "; ".join(
                        f"position {i + 1}, {unit(tokens[k][i])}" for i in at) + "."
        out.append(text)
    return out


def _commits(traj: Trajectory) -> list[int]:
    """How many positions each step committed or changed (0 for the start)."""
    return [0] + [len(r.committed) + len(r.changed) for r in traj.records]


def stage_data(traj: Trajectory, title: str = "", start: int | None = None, interval_s: float = 0.8,
               present: bool = False, report: bool = True, rows: list[int] | None = None,
               words: dict[str, str] | None = None, step_name: str = "step",
               states: list[list[str]] | None = None, branches: list[Trajectory] | None = None,
               picked: dict | None = None, autoplay: bool = False, lead: list[str] | None = None) -> dict:
    """The player's input. `rows`: the positions drawn in the grid (default: all; a real model's
    page passes the generated part). `start`: the step shown first (default: the last).
    `words`: legend labels that replace the reverse-process ones (state -> label), e.g. the
    Forward page's; `autoplay`: play once on opening (never for a reader who asked for reduced motion);
    `step_name`: what the columns are called; `states`: each position's state after
    each step, when not the reverse process's (render/cells.cell_states). `branches`: runs that part
    from this one (branching.py), drawn as lanes under it, each from its parting step; `picked`:
    the cell the user picked last ({"lane", "pos"}), outlined; `lead`: paragraphs a lesson says beside the
    stage, drawn large in presenter mode (a projector shows the lesson's text and its question with it)."""
    states = cell_states(traj) if states is None else states
    tokens = [display_tokens(traj, k) for k in range(traj.n_steps + 1)]
    labels_of = {k: (words or {}).get(k, STATES[k][2]) for k in STATE_KEYS}
    shown = list(range(traj.length)) if rows is None else list(rows)
    lanes = []
    for j, b in enumerate(branches or [], start=1):
        lanes.append({"label": f"Branch {j} · {describe(b)}", "from": int(b.branch["from_step"]),
                      "tokens": [display_tokens(b, k) for k in range(b.n_steps + 1)],
                      "states": ["".join(str(STATE_KEYS.index(x)) for x in row) for row in cell_states(b)],
                      "commits": _commits(b), "fixed": list(b.fixed)})
    used = sorted({i for row in tokens for i in row} | {i for lane in lanes for row in lane["tokens"] for i in row})
    real = traj.is_real_text
    vocab = traj.vocab
    if real:  # a real model's branches may write ids the original never used
        vocab = {k: v for b in [*(branches or []), traj] for k, v in b.vocab.items()}
    texts = {str(i): vocab[str(i)] if real else vocab[i] for i in used}
    labels = dict(texts)  # the raw token, for row labels and hovers
    for lane, b in zip(lanes, branches or []):
        lane["alt"] = step_texts(lane["tokens"], cell_states(b), labels_of, b.mask_id, step_name, shown, labels=labels)
    if real:  # running text: each token's piece as it reads, [MASK] as a box, [CLS] / [SEP] as nothing
        special = {texts[str(i)] for i in used if i in set(traj.settings.get("special_ids", ()))}
        pieces = running_text_pieces([texts[str(i)] for i in used], special)
        texts = {str(i): (MASK_GLYPH if i == traj.mask_id else p) for i, p in zip(used, pieces, strict=True)}
    seen = {s for row in states for s in row} | {STATE_KEYS[int(c)] for lane in lanes for row in lane["states"]
                                                  for c in row}
    gen_end = traj.gen_start + traj.settings.get("gen_length", traj.length - traj.gen_start)
    blocks = []
    if traj.block_length and traj.block_length < gen_end - traj.gen_start:
        blocks = list(range(traj.gen_start + traj.block_length, gen_end, traj.block_length))
    final = tokens[-1]
    data = {
        "kind": "text" if real else "chips",
        "title": title,
        "T": traj.n_steps,
        "N": traj.length,
        "texts": texts,
        "labels": labels,  # the raw token, for row labels and hovers
        "tokens": tokens,
        "states": ["".join(str(STATE_KEYS.index(s)) for s in row) for row in states],
        "state_list": [{"key": k, "fill": STATES[k][0], "fg": STATES[k][1], "label": labels_of[k],
                        "mark": MARKS[k][0], "glyph": MARKS[k][1], "ink": MARKS[k][2], "mark_words": MARKS[k][3]}
                       for k in STATE_KEYS],
        "alt": step_texts(tokens, states, labels_of, traj.mask_id, step_name, shown, labels=labels),
        "step_name": step_name,
        "legend": [STATE_KEYS.index(s) for s in LEGEND_ORDER if s in seen],
        "fixed": list(traj.fixed),
        "rows": list(range(traj.length)) if rows is None else list(rows),
        "row_final": [int(final[i]) for i in range(traj.length)],
        "blocks": blocks,
        "commits": _commits(traj),
        "recomputed": recomputed_masks(traj),  # the block cache's recomputed positions per step, or None
        "lanes": lanes,
        "lane_label": (f"Original · {describe(traj)}" if traj.branch else "Original") if lanes else "",
        "picked": picked,
        "note": idle_steps_note(traj),
        "start": traj.n_steps if start is None else max(0, min(int(start), traj.n_steps)),
        "interval": float(interval_s),
        "present": bool(present),
        "report": bool(report),
        "autoplay": bool(autoplay),
        "lead": [str(p) for p in (lead or [])],
    }
    data["id"] = hashlib.sha1(json.dumps([data["tokens"], data["states"], title, lanes]).encode()).hexdigest()[:16]
    return data


def waiting_stage_data(length: int, mask_id: int, title: str, note: str, present: bool = True) -> dict:
    """The stage before anything was generated: `length` masks at step 0 of 0 and a note saying what to do
    (the Real page's presenter mode, from its link, before the first generation)."""
    traj = Trajectory(variant="real", vocab={str(mask_id): "[MASK]"}, mask_id=mask_id, initial=[mask_id] * length,
                      settings={"gen_length": length})
    data = stage_data(traj, title=title, present=present, report=False)
    data["note"] = note
    return data
