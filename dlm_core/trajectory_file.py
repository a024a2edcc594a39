"""Reading a trajectory someone shared (a JSON file from "Trajectory (JSON)"): everything in it is checked
before a page draws it, and a file that is not a usable trajectory is refused with one sentence in the
user's words (`TrajectoryFileError`), never another exception.

Three layers of checks:
- the text: at most MAX_BYTES, JSON (NaN and infinities refused), nested at most MAX_DEPTH deep;
- the shape (a pydantic schema, strict: a number is not a string, a bool not a number): every field of
  the Trajectory and its StepRecords with its type, and no field the contract does not have;
- the meaning: lengths that fit together, ids in the vocabulary, positions in the sequence, step numbers
  in order, probabilities in [0, 1], and the optional data (top-k, confidences, Gaussian states, texts)
  either absent or complete (`Trajectory.check` and `check_optional`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dlm_core.trajectory import StepRecord, Trajectory

MAX_BYTES = 32 * 1024 * 1024  # a real model's run with its top-k is a few MB
MAX_DEPTH = 12  # the deepest a trajectory's JSON nests (settings included)
MAX_CELLS = 4_000_000  # positions x steps: what a page can still draw


class TrajectoryFileError(ValueError):
    """A shared file that is not a usable trajectory; the message is one sentence for the user."""


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Record(_Strict):
    step: int
    t: float
    s: float
    tokens: list[int]
    committed: list[int] = []
    changed: list[int] = []
    remasked: list[int] = []
    confidence: list[float | None] = []
    topk_ids: list[list[int]] = []
    topk_probs: list[list[float]] = []
    state: list[list[float]] | None = None
    nearest: list[int] | None = None
    model_called: bool = True
    recomputed: list[int] | None = None


class _Trajectory(_Strict):
    variant: str = Field(max_length=64)
    vocab: list[str] | dict[str, str]
    mask_id: int | None
    initial: list[int]
    records: list[_Record] = []
    settings: dict[str, Any] = {}
    fixed: list[int] = []
    block_length: int | None = None
    gen_start: int = 0
    text_per_step: list[str] | None = None
    branch: dict[str, Any] | None = None


def _depth(value, limit: int) -> int:
    """How deep a parsed JSON value nests (lists and objects), counting no further than limit + 1."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        v, d = todo.pop()
        if isinstance(v, (list, dict)):
            deepest = max(deepest, d)
            if deepest > limit:
                return deepest
            todo.extend((x, d + 1) for x in (v.values() if isinstance(v, dict) else v))
    return deepest


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def _where(loc: tuple) -> str:
    """A pydantic error location in words: ('records', 2, 'tokens', 0) -> "step 3's tokens (item 1)"."""
    words, i = [], 0
    parts = [p for p in loc if p not in ("list[float]", "dict[str,str]", "list[str]", "float", "none", "int")]
    while i < len(parts):
        p = parts[i]
        if p == "records" and i + 1 < len(parts) and isinstance(parts[i + 1], int):
            words.append(f"step {parts[i + 1] + 1}'s")
            i += 2
            continue
        words.append(f"(item {p + 1})" if isinstance(p, int) else str(p).replace("_", " "))
        i += 1
    return " ".join(words) or "the file"


def _what(err: dict) -> str:
    """A pydantic error's message as the end of a sentence about the field."""
    if err["type"] == "missing":
        return "is missing"
    if err["type"] == "extra_forbidden":
        return "is not part of a trajectory"
    msg = str(err["msg"])
    return msg[len("Input "):] if msg.startswith("Input ") else msg[:1].lower() + msg[1:]


def parse(text: str | bytes) -> dict:
    """The JSON of a shared file as a dict, within the size and nesting limits."""
    if len(text) > MAX_BYTES:
        raise TrajectoryFileError(f"this file is {len(text) / 1e6:.0f} MB; a trajectory file is at most "
                                  f"{MAX_BYTES // (1024 * 1024)} MB")
    try:
        d = json.loads(text, parse_constant=_no_constant)
    except RecursionError as e:
        raise TrajectoryFileError(f"this file nests deeper than a trajectory ever does (at most {MAX_DEPTH} "
                                  "levels)") from e
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as e:
        raise TrajectoryFileError(f"this file is not JSON ({str(e).split(':')[0]})") from e
    if not isinstance(d, dict) or not {"variant", "vocab", "initial", "records"} <= set(d):
        raise TrajectoryFileError("this JSON is not a trajectory (it needs variant, vocab, initial and records)")
    if _depth(d, MAX_DEPTH) > MAX_DEPTH:
        raise TrajectoryFileError(f"this file nests deeper than a trajectory ever does (at most {MAX_DEPTH} levels)")
    return d


def check_optional(traj: Trajectory) -> None:
    """Raise ValueError unless the optional data is absent or complete: top-k ids with their probabilities
    in [0, 1], confidences, Gaussian states and decoded texts, each the length of the sequence."""
    n = traj.length
    if n * max(1, traj.n_steps) > MAX_CELLS:
        raise ValueError(f"a trajectory of {n} positions and {traj.n_steps} steps is too large to draw")
    known = set(range(len(traj.vocab))) if not traj.is_real_text else {int(k) for k in traj.vocab}
    for r in traj.records:
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in (r.t, r.s)):
            raise ValueError(f"step {r.step} has times outside [0, 1]")
        if r.confidence and (len(r.confidence) != n
                             or not all(c is None or math.isfinite(c) for c in r.confidence)):
            raise ValueError(f"step {r.step} has confidences that do not fit the sequence")
        if (r.topk_ids or r.topk_probs) and (len(r.topk_ids) != n or len(r.topk_probs) != n):
            raise ValueError(f"step {r.step} has predictions for {len(r.topk_ids)} of its {n} positions")
        for ids, probs in zip(r.topk_ids, r.topk_probs):
            if len(ids) != len(probs) or any(i not in known for i in ids):
                raise ValueError(f"step {r.step} predicts ids that are not in the vocabulary")
            if not all(math.isfinite(p) and 0.0 <= p <= 1.0 + 1e-6 for p in probs):
                raise ValueError(f"step {r.step} has probabilities outside [0, 1]")
        if r.recomputed is not None and not all(0 <= i < n for i in r.recomputed):
            raise ValueError(f"step {r.step} names recomputed positions outside the sequence")
        if r.state is not None:
            dims = {len(row) for row in r.state}
            if len(r.state) != n or len(dims) != 1 or not 0 < dims.pop() <= 256 or not all(
                    math.isfinite(v) for row in r.state for v in row):
                raise ValueError(f"step {r.step} has a continuous state that does not fit the sequence")
    if traj.text_per_step is not None and len(traj.text_per_step) != traj.n_steps:
        raise ValueError(f"the file has texts for {len(traj.text_per_step)} of its {traj.n_steps} steps")
    if traj.block_length is not None and not 0 < traj.block_length <= n:
        raise ValueError(f"its block length {traj.block_length} does not fit a sequence of {n}")
    if not 0 <= traj.gen_start <= n:
        raise ValueError(f"its generated part starts at {traj.gen_start}, outside the sequence of {n}")
    if traj.mask_id is not None and traj.mask_id not in known:
        raise ValueError("its mask id is not in its vocabulary")
    gen_length = traj.settings.get("gen_length")
    if gen_length is not None and (not isinstance(gen_length, int) or isinstance(gen_length, bool)
                                   or not 0 < gen_length <= n - traj.gen_start):
        raise ValueError("its generation length does not fit the sequence")


def load(text: str | bytes) -> Trajectory:
    """A trajectory from a shared JSON file, checked (module docstring); TrajectoryFileError otherwise."""
    d = parse(text)
    try:
        valid = _Trajectory.model_validate(d)
    except ValidationError as e:
        err = e.errors()[0]
        raise TrajectoryFileError(f"this file is not a trajectory: {_where(err['loc'])} {_what(err)}") from None
    if isinstance(valid.vocab, dict) and not all(k.isdigit() and len(k) <= 9 for k in valid.vocab):
        raise TrajectoryFileError("this file is not a trajectory: its vocabulary's keys must be token ids")
    fields = valid.model_dump()
    fields["records"] = [StepRecord(**r) for r in fields["records"]]
    traj = Trajectory(**fields)
    try:
        traj.check()
        check_optional(traj)
    except ValueError as e:
        raise TrajectoryFileError(f"this file is not a usable trajectory: {e}") from None
    return traj
