"""Training the toy denoisers, and their checkpoints (safetensors + JSON).

`train()` draws batches from the exact data distribution, reports progress through a
tqdm bar and/or a callback (the Train page uses the callback), and can be stopped by
the callback returning False.
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .evaluate import EvalSettings
from .toy_language import support_arrays
from .variants import get

ASSETS = Path(__file__).resolve().parent.parent / "assets"
CHECKPOINTS = ASSETS / "checkpoints"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt or does not match its config."""


@dataclass
class TrainConfig:
    variant: str = "masked"
    steps: int = 2000
    batch_size: int = 128  # 2000 x 128 reaches NELBO within 1 % of H in ~35 s on one core
    lr: float = 2e-3
    weight_decay: float = 0.0
    warmup: int = 100
    min_lr_ratio: float = 0.05  # cosine decay to this fraction of lr
    schedule: str = "linear"  # noise schedule used for training
    seed: int = 0
    d_model: int = 64
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 256
    threads: int = 1  # tiny models: one thread is faster and steadier on 2 cores


def default_config(variant: str, **overrides) -> TrainConfig:
    """TrainConfig with the variant's own defaults (its train_defaults) and overrides."""
    base = dict(get(variant).train_defaults)
    base.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(variant=variant, **base)


def build_model(cfg: TrainConfig) -> torch.nn.Module:
    return get(cfg.variant).build_model(cfg)


def data_batches(batch_size: int, generator: torch.Generator):
    """Endless batches of sentences drawn from the exact distribution of the language."""
    sa = support_arrays()
    x = torch.as_tensor(sa.x)
    p = torch.as_tensor(sa.p)
    while True:
        yield x[torch.multinomial(p, batch_size, replacement=True, generator=generator)]


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


def train(
    cfg: TrainConfig,
    callback: Callable[[int, float, torch.nn.Module], bool | None] | None = None,
    progress: bool = False,
) -> TrainResult:
    """Train a toy denoiser. `callback(step, loss, model)` after every step; False stops."""
    if cfg.steps < 1:
        raise ValueError("training needs at least 1 step")
    torch.set_num_threads(max(1, cfg.threads))
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = build_model(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    objective = get(cfg.variant).loss
    batches = data_batches(cfg.batch_size, gen)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=cfg.steps, desc=f"train {cfg.variant}", unit="step")
    losses: list[float] = []
    stopped = False
    t0 = time.perf_counter()
    model.train()
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, cfg)
        loss = objective(model, next(batches), cfg.schedule, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
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
    return TrainResult(model, cfg, losses, len(losses), time.perf_counter() - t0, stopped)


# ------------------------------------------------------------------ checkpoints


def default_checkpoint(variant: str) -> Path:
    return CHECKPOINTS / variant


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
        "training": asdict(result.config),
        "seed": result.config.seed,
        "steps_done": result.steps_done,
        "stopped_early": result.stopped,
        "wall_time_s": round(result.wall_time_s, 2),
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
    """Train in a background thread so a page (and every other user) stays responsive.

    The page polls `snapshot()`; `stop()` asks the loop to end after the current step.
    Every `eval_every` steps the variant's quick NELBO is measured against the entropy.
    """

    def __init__(self, cfg: TrainConfig, eval_every: int = 100):
        import threading

        self.cfg = cfg
        self.eval_every = eval_every
        self.losses: list[tuple[int, float]] = []  # (step, nats per sentence)
        self.nelbo: list[tuple[int, float]] = []  # (step, bits per unit)
        self.result: TrainResult | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"train-{cfg.variant}")
        self.started = time.time()

    def start(self) -> TrainingJob:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _callback(self, step: int, loss: float, model) -> bool:
        with self._lock:
            self.losses.append((step, loss))
        if step % self.eval_every == 0 or step == self.cfg.steps:
            value = quick_nelbo_bits(self.cfg.variant, model)
            model.train()
            with self._lock:
                self.nelbo.append((step, value))
        return not self._stop.is_set()

    def _run(self) -> None:
        try:
            self.result = train(self.cfg, callback=self._callback)
        except Exception as e:  # noqa: BLE001 - reported on the page
            self.error = f"{type(e).__name__}: {e}"

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "losses": list(self.losses),
                "nelbo": list(self.nelbo),
                "running": self.running,
                "done": self.result is not None,
                "stopped": bool(self.result and self.result.stopped),
                "error": self.error,
                "elapsed_s": time.time() - self.started,
                "steps": self.cfg.steps,
            }


def quick_nelbo_bits(variant: str, model) -> float:
    """NELBO in bits per unit for the live curve: exact for masked, a small Monte-Carlo estimate otherwise."""
    model.eval()
    with torch.no_grad():
        return float(get(variant).nelbo(model, EvalSettings(n_t=32))[0])
