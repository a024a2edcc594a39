"""Training the toy denoisers, and their checkpoints (safetensors + JSON).

`train()` takes batches stratified by the exact data distribution (`data_batches`), minimises
the variant's loss (with exact targets: each noisy input scored against the language's posterior,
see the variants' `loss`), reports progress through a tqdm bar and/or a callback (the Train page
uses the callback), and can be stopped by the callback returning False. The recipes that reach
the entropy floor in under 20 s on one thread are `TrainConfig` (masked) and each variant's
`train_defaults`; `bench/train_to_floor.py` times them.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dlm_core import ASSETS
from dlm_core.studies.training_data import data_batches, training_batches  # noqa: F401 (data_batches: the API)
from dlm_core.variants.evaluate import EvalSettings
from dlm_core.variants.registry import get

CHECKPOINTS = ASSETS / "checkpoints"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt or does not match its config."""


@dataclass
class TrainConfig:
    """One training recipe. The defaults are the masked variant's; each variant's `train_defaults` overrides
    them (docs/maths.md, "In this project (all variants)"). Every run is reproducible bit for bit from its seed
    on one thread."""

    variant: str = "masked"
    steps: int = 400
    batch_size: int = 128  # sentences per step, stratified by p(x) (data_batches)
    lr: float = 1e-2
    weight_decay: float = 0.0
    warmup: int = 50
    min_lr_ratio: float = 0.0  # cosine decay to this fraction of lr
    schedule: str = "linear"  # noise schedule of the uniform loss (the masked and Gaussian losses do not use one)
    seed: int = 0
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    threads: int = 1  # tiny models: one thread is faster and steadier on 2 cores
    betas: tuple[float, float] = (0.9, 0.95)  # AdamW
    targets: str = "exact"  # the loss's targets: "exact" (the language's posterior) or "sampled" (the drawn sentence)
    grad_clip: float = 1.0  # clip the gradient norm at this (0: no clipping)
    # --- the training lab's choices (docs/maths.md section 10); the defaults are the recipes above, and a
    # checkpoint records a choice only when it differs from its default (`to_dict`)
    weighting: str = "k"  # masked: "k" (exactly k masks, weight L/k), "elbo" (t drawn, weight -alpha'_t/(1-alpha_t)),
    #                       "unweighted" (t drawn, weight 1: not a bound), "bert" (15 % masked, mean: not a bound)
    time_input: bool = False  # masked: give the denoiser the time t (RADD: it needs none)
    task: str = "pretrain"  # "instruction": the subject (the prompt) is never masked, only the response is learned
    train_size: int = 0  # 0: fresh sentences every batch; U > 0: epochs over a fixed set of U sentences drawn from p

    def __post_init__(self):
        for name, value, known in (("loss weighting", self.weighting, WEIGHTINGS), ("task", self.task, TASKS)):
            if value not in known:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(known)}")
        if int(self.train_size) < 0:
            raise ValueError("the training set size is 0 (fresh sentences) or a number of sentences")
        if self.task == "instruction" and self.targets == "exact":
            raise ValueError("the instruction task learns from the drawn sentence (--targets sampled): the "
                             "language's exact conditional does not know where a prompt ends")
        if self.train_size and self.targets == "exact":
            raise ValueError("a fixed training set needs sampled targets (--targets sampled): exact targets score "
                             "every input against the whole language, which a model trained on a few sentences "
                             "must not see")

    def to_dict(self) -> dict:
        """As checkpoint.json records it: a lab choice only where it is not its default (the recipes read as ever)."""
        return {k: v for k, v in asdict(self).items() if k not in LAB_DEFAULTS or v != LAB_DEFAULTS[k]}


LAB_DEFAULTS = {"weighting": "k", "time_input": False, "task": "pretrain", "train_size": 0}


def lab_choices(cfg: TrainConfig) -> dict:
    """The lab's choices of a recipe that are not their defaults (empty: a plain recipe)."""
    return {k: v for k, v in cfg.to_dict().items() if k in LAB_DEFAULTS}
WEIGHTINGS = ("k", "elbo", "unweighted", "bert")  # docs/maths.md section 10
TASKS = ("pretrain", "instruction")


def default_config(variant: str, **overrides) -> TrainConfig:
    """TrainConfig with the variant's own defaults (its train_defaults) and overrides."""
    base = dict(get(variant).train_defaults)
    base.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(variant=variant, **base)


def build_model(cfg: TrainConfig) -> torch.nn.Module:
    return get(cfg.variant).build_model(cfg)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to min_lr_ratio * lr."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


@dataclass
class TrainResult:
    model: torch.nn.Module
    config: TrainConfig
    losses: list[float]
    steps_done: int
    wall_time_s: float
    stopped: bool
    cpu_time_s: float | None = None  # the training thread's CPU time (wall time runs ahead on a busy machine)


def train(
    cfg: TrainConfig,
    callback: Callable[[int, float, torch.nn.Module], bool | None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train a toy denoiser. `callback(step, loss, model)` after every step; False stops.

    `wall_time_s` counts everything from the call on (model, optimiser, the first batches), callbacks included."""
    if cfg.steps < 1:
        raise ValueError("training needs at least 1 step")
    t0, c0 = time.perf_counter(), time.thread_time()
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=tuple(cfg.betas),
                            fused=True)
    objective = get(cfg.variant).objective(cfg)  # its loss, or the lab's version of it (weighting, task, ...)
    batches = training_batches(cfg, gen)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc=f"train {cfg.variant}", unit="step")
    losses: list[float] = []
    stopped = False
    model.train()
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        loss = objective(model, next(batches), gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        value = float(loss.detach())
        losses.append(value)
        if bar is not None:
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss_bits_per_unit=f"{value / (6 * math.log(2)):.3f}")
        if callback is not None and callback(step + 1, value, model) is False:
            stopped = True
            break
    if bar is not None:
        bar.close()
    model.eval()
    return TrainResult(model, cfg, losses, len(losses), time.perf_counter() - t0, stopped, time.thread_time() - c0)


# ------------------------------------------------------------------ checkpoints


def default_checkpoint(variant: str) -> Path:
    return CHECKPOINTS / variant


def restore_hint(variant: str) -> str:
    """How to get a shipped checkpoint back (README, "Reproducing the shipped files")."""
    where = f"assets/checkpoints/{variant}"
    return (f"Restore the shipped files with `git checkout -- {where}`, or rebuild them bit for bit with "
            f"`python -m dlm_core train --variant {variant}`.")


def loss_recipe(cfg: TrainConfig) -> dict:
    """What the variant's training loss was, for checkpoint.json: the function, its targets and where it
    draws t (the module's TRAIN_PROPOSAL, if it has one)."""
    fn = get(cfg.variant).loss
    module = sys.modules.get(getattr(fn, "__module__", ""), None)
    return {"function": f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__name__', '?')}", "targets": cfg.targets,
            "time_proposal": getattr(module, "TRAIN_PROPOSAL", None)}


def _stderr_over_entropy(metrics: dict) -> float | None:
    se, h = metrics.get("nelbo_stderr_bits"), metrics.get("entropy_bits_per_unit")
    return None if se is None or not h else se / h


def save_checkpoint(result: TrainResult, out_dir: str | Path, metrics: dict | None = None) -> Path:
    """Write model.safetensors and checkpoint.json (config, training settings, seed, time, metrics)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous() for k, v in result.model.state_dict().items()}
    tmp = out / "model.safetensors.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, out / "model.safetensors")
    meta = {
        "variant": result.config.variant,
        "training": result.config.to_dict(),
        "seed": result.config.seed,
        "steps_done": result.steps_done,
        "stopped_early": result.stopped,
        "wall_time_s": round(result.wall_time_s, 2),
        "cpu_time_s": None if result.cpu_time_s is None else round(result.cpu_time_s, 2),
        "loss": loss_recipe(result.config),
        "nelbo_over_entropy": (metrics or {}).get("nelbo_over_entropy"),
        "nelbo_stderr_over_entropy": _stderr_over_entropy(metrics or {}),
        "final_loss_nats": float(np.mean(result.losses[-50:])) if result.losses else None,
        "metrics": metrics or {},
        "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "machine": f"{platform.machine()} {os.cpu_count()} cpus",
    }
    (out / "checkpoint.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out


def load_checkpoint(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """Load a checkpoint directory; a clear `CheckpointError` for anything wrong with it."""
    p = Path(path)
    if p.is_file():
        p = p.parent
    meta_path, weights = p / "checkpoint.json", p / "model.safetensors"
    if not meta_path.exists() or not weights.exists():
        raise CheckpointError(f"no checkpoint at {p}: expected checkpoint.json and model.safetensors there")
    try:
        meta = json.loads(meta_path.read_text())
        cfg = TrainConfig(**meta["training"])
        model = build_model(cfg)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{meta_path} is not a valid checkpoint description ({e})") from e
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{weights} is corrupt or not a safetensors file ({e})") from e
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"the weights in {weights} do not match their config ({str(e)[:300]})") from e
    return model.eval(), meta


# ------------------------------------------------------------ background jobs


class TrainingJob:
    """Train through the server's job queue (dlm_core.jobs) so a page (and every other user) stays responsive.

    `start()` puts the training in the queue's line; the page polls `snapshot()` (its place in
    the line while it waits, then the live curve); `stop()` takes it out of the line, or asks the
    loop to end after the current step. Every `eval_every` steps the variant's quick NELBO is
    measured against the entropy. `owner`: the session that asked (its job is cancelled when it
    has gone); `queue`: default the server's one queue.
    """

    SECONDS_PER_STEP_GUESS = 0.03  # the estimate before the queue has timed a training
    WORKER = "dlm_core.studies.training:train_in_worker"  # what trains (and measures) in the worker process

    def __init__(self, cfg: TrainConfig, eval_every: int = 100, owner: str | None = None, queue=None,
                 in_worker_process: bool = True):
        import threading

        self.cfg = cfg
        self.eval_every = eval_every
        self.owner = owner
        self.queue = queue
        self.in_worker_process = in_worker_process  # False: train in the queue's worker thread itself
        self.losses: list[tuple[int, float]] = []  # (step, nats per sentence)
        self.nelbo: list[tuple[int, float]] = []  # (step, bits per unit)
        self.result: TrainResult | None = None
        self.output: dict = {}  # what the worker returned besides the weights (a subclass's measurements)
        self.job = None  # the queue's Job, once started
        self._lock = threading.Lock()
        self.started = time.time()

    def start(self) -> TrainingJob:
        from dlm_core.serving.jobs import default_queue

        queue = self.queue or default_queue()
        self.job = queue.submit(self._run, kind="train", owner=self.owner, cost=self.cfg.steps,
                                label=f"train {self.cfg.variant}, {self.cfg.steps} steps",
                                hint_s=self.SECONDS_PER_STEP_GUESS * self.cfg.steps)
        return self

    def stop(self) -> None:
        if self.job is not None:
            self.job.cancel("stopped")

    @property
    def running(self) -> bool:
        """Not finished yet: waiting in the queue's line or training."""
        return self.job is not None and not self.job.finished

    @property
    def waiting(self) -> bool:
        return self.job is not None and self.job.waiting

    @property
    def error(self) -> str | None:
        return None if self.job is None else self.job.error

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the training has finished (True) or `timeout` seconds have passed."""
        return self.job is not None and self.job.wait(timeout)

    def _record(self, message: tuple) -> None:
        kind, step, value = message  # ("loss", step, nats per sentence) or ("nelbo", step, bits per unit)
        with self._lock:
            (self.losses if kind == "loss" else self.nelbo).append((step, value))

    def _run(self, job) -> TrainResult:
        self.job = job  # (submit may not have returned yet)
        if not self.in_worker_process:
            self.result = train(self.cfg, callback=_progress(self._record, lambda: job.cancelled, self.eval_every,
                                                             self.cfg))
            self.output = self.finish(self.result)
            return self.result
        out = job.run_in_process(self.WORKER,
                                 {"config": asdict(self.cfg), "eval_every": self.eval_every}, on_message=self._record)
        from safetensors.torch import load as load_tensors

        model = build_model(self.cfg)
        model.load_state_dict(load_tensors(out["state"]))
        self.output = out
        self.result = TrainResult(model.eval(), self.cfg, out["losses"], out["steps_done"], out["wall_time_s"],
                                  out["stopped"])
        return self.result

    def finish(self, result: TrainResult) -> dict:
        """What WORKER adds to a finished training, when it trains in the queue's own thread instead."""
        return {}

    def snapshot(self) -> dict:
        job = self.job
        with self._lock:
            return {
                "losses": list(self.losses),
                "nelbo": list(self.nelbo),
                "running": self.running,
                "waiting": self.waiting,
                "done": self.result is not None,
                "stopped": bool(self.result and self.result.stopped),
                "cancelled": job is not None and job.cancelled and self.result is None,
                "error": self.error,
                "elapsed_s": 0.0 if job is None else job.elapsed(),
                "steps": self.cfg.steps,
            }


def _progress(record: Callable[[tuple], None], cancelled: Callable[[], bool], eval_every: int, cfg: TrainConfig):
    """The training callback of a TrainingJob: every step's loss, every eval_every steps the quick NELBO,
    and stop (after this step) once cancelled."""
    def callback(step: int, loss: float, model) -> bool:
        record(("loss", step, loss))
        if step % eval_every == 0 or step == cfg.steps:
            value = training_bound_bits(cfg, model)
            model.train()
            record(("nelbo", step, value))
        return not cancelled()
    return callback


def train_in_worker(send, cancelled, config: dict, eval_every: int) -> dict:
    """A TrainingJob's training in a worker process of the job queue (dlm_core.jobs.WorkerProcess): the
    progress streams back through `send`, the weights come back as safetensors bytes."""
    from safetensors.torch import save as save_tensors

    cfg = TrainConfig(**config)
    result = train(cfg, callback=_progress(send, cancelled, eval_every, cfg))
    state = {k: v.detach().contiguous() for k, v in result.model.state_dict().items()}
    return {"state": save_tensors(state), "losses": result.losses, "steps_done": result.steps_done,
            "wall_time_s": result.wall_time_s, "stopped": result.stopped}


def training_bound_bits(cfg: TrainConfig, model) -> float:
    """What a training's live curve measures, bits per unit: the variant's quick NELBO for a plain recipe; for a
    lab choice, the bound of what it was trained for (Variant.training_bound)."""
    model.eval()
    with torch.no_grad():
        return float(get(cfg.variant).training_bound(model, cfg))


def quick_nelbo_bits(variant: str, model) -> float:
    """NELBO in bits per unit for the live curve: exact for masked, a small Monte-Carlo estimate otherwise."""
    model.eval()
    with torch.no_grad():
        return float(get(variant).nelbo(model, EvalSettings(n_t=32))[0])
