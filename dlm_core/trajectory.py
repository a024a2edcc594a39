"""The Trajectory: the contract between samplers and pages.

One `StepRecord` per reverse step, the same for every model and variant. Pages and
figures only read trajectories; they never call a model. Trajectories round-trip
through JSON so a run can be exported, shared and replayed (a shared file is read, and
checked, by trajectory_file.load).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace


@dataclass
class StepRecord:
    step: int  # 1-based index of the reverse step
    t: float  # time before the step
    s: float  # time after the step
    tokens: list[int]  # the sequence after the step
    committed: list[int] = field(default_factory=list)  # positions revealed at this step
    changed: list[int] = field(default_factory=list)  # positions whose unit changed (uniform / Gaussian)
    remasked: list[int] = field(default_factory=list)  # positions re-masked at this step (ReMDM)
    confidence: list[float | None] = field(default_factory=list)  # score used for ordering, per position
    topk_ids: list[list[int]] = field(default_factory=list)  # predicted distribution, top-k ids per position
    topk_probs: list[list[float]] = field(default_factory=list)  # ... and their probabilities
    state: list[list[float]] | None = None  # Gaussian: continuous state z_s per position
    nearest: list[int] | None = None  # Gaussian: nearest unit of each position
    model_called: bool = True  # False when the last model output was reused
    # block cache on (sampling/block_cache.py): the positions whose hidden states this step's pass computed
    # ([] when the last output was reused); None: the cache was off (every pass computes every position)
    recomputed: list[int] | None = None


@dataclass
class Trajectory:
    variant: str  # masked | uniform | gaussian | real
    vocab: list[str] | dict  # id -> text: a list (toy models) or {str(id): text} of the ids used (real models)
    mask_id: int | None
    initial: list[int]  # the sequence before the first step (all noise / masks + prompt)
    records: list[StepRecord] = field(default_factory=list)
    settings: dict = field(default_factory=dict)  # sampler settings, seed, model name
    fixed: list[int] = field(default_factory=list)  # prompt / pinned positions
    block_length: int | None = None
    gen_start: int = 0  # first generated position (after the prompt)
    text_per_step: list[str] | None = None  # real models: decoded text after each step
    # a branch (branching.py): {"from_step": k, "pins", "new_pins", "released", "remasked", "seed",
    # "edited": the state it continued from, ...}; its first k records are its parent's
    branch: dict | None = None

    @property
    def is_real_text(self) -> bool:
        """Whether this run wrote real text with a model's tokenizer (its vocabulary maps the ids it used to
        their tokens), not the toy language's units: the toy language's verdicts do not apply to it, and its
        tokens may carry a tokenizer's markers. The one place that question is answered."""
        return isinstance(self.vocab, dict)

    def token_text(self, i: int) -> str:
        return self.vocab[str(int(i))] if self.is_real_text else self.vocab[int(i)]

    @property
    def n_steps(self) -> int:
        return len(self.records)

    @property
    def length(self) -> int:
        return len(self.initial)

    def tokens_at(self, k: int) -> list[int]:
        """The sequence after k steps (k = 0: before the first step)."""
        return list(self.initial) if k == 0 else list(self.records[k - 1].tokens)

    @property
    def final(self) -> list[int]:
        return self.tokens_at(self.n_steps)

    def until(self, k: int) -> Trajectory:
        """The run as it stood after k steps (its first k records): what a page shows before it reveals more."""
        k = max(0, min(int(k), self.n_steps))
        return replace(self, records=list(self.records[:k]),
                       text_per_step=None if self.text_per_step is None else list(self.text_per_step[:k]))

    def commit_step(self) -> list[int | None]:
        """For each position, the last step at which it was committed (None: never)."""
        out: list[int | None] = [None] * self.length
        for r in self.records:
            for i in r.committed:
                out[i] = r.step
            for i in r.remasked:
                out[i] = None
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> Trajectory:
        d = dict(d)
        d["records"] = [StepRecord(**r) for r in d.get("records", [])]
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> Trajectory:
        return cls.from_dict(json.loads(text))

    def check(self) -> None:
        """Raise ValueError unless the records fit together: lengths, ids, positions, step numbers."""
        n = len(self.initial)
        if not isinstance(self.vocab, (list, dict)) or not self.vocab:
            raise ValueError("the trajectory has no vocabulary")
        if not 0 < n <= 4096 or len(self.records) > 4096:
            raise ValueError(f"a trajectory of {n} positions and {len(self.records)} steps is out of range")
        known = range(len(self.vocab)) if isinstance(self.vocab, list) else {int(k) for k in self.vocab}
        rows = [self.initial] + [r.tokens for r in self.records]
        for k, row in enumerate(rows):
            if len(row) != n or not all(isinstance(i, int) and i in known for i in row):
                raise ValueError(f"step {k} of the trajectory has ids that are not in its vocabulary")
        for k, r in enumerate(self.records, start=1):
            if r.step != k:
                raise ValueError(f"record {k} says it is step {r.step}")
            if any(not isinstance(i, int) or not 0 <= i < n
                   for i in (*r.committed, *r.changed, *r.remasked, *(r.recomputed or ()))):
                raise ValueError(f"step {k} names positions outside the sequence")
            if r.nearest is not None and (len(r.nearest) != n or any(i not in known for i in r.nearest)):
                raise ValueError(f"step {k} has nearest units that are not in the vocabulary")
        if any(not isinstance(i, int) or not 0 <= i < n for i in self.fixed):
            raise ValueError("the pinned positions are outside the sequence")
        if self.branch is not None:
            b = self.branch
            k = b.get("from_step") if isinstance(b, dict) else None
            if not isinstance(k, int) or not 0 <= k < max(1, len(self.records)):
                raise ValueError("the branch's parting step is outside the run")
            edited = b.get("edited", self.initial)
            if (not isinstance(edited, list) or len(edited) != n
                    or not all(isinstance(i, int) and i in known for i in edited)):
                raise ValueError("the branch's edited state does not fit the trajectory")
            pairs = [*b.get("pins", []), *b.get("new_pins", [])]
            places = [*b.get("remasked", []), *b.get("released", [])]
            if (not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], int) and 0 <= p[0] < n
                        and p[1] in known for p in pairs)
                    or not all(isinstance(i, int) and 0 <= i < n for i in places)):
                raise ValueError("the branch's edits name positions or units outside the trajectory")
