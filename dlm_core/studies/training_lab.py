"""The training lab (docs/maths.md section 10; the Training lab page; `python -m dlm_core train` with the lab's
flags): small models trained side by side through the server's job queue, each with one choice of its recipe
changed, each measured by the exact bound of what it trained for against that bound's floor.

A `Preset` is one point of the article's section 3 ("How is a DLM trained?") as a set of `LabRun`s: the loss
weighting, the time input, the noising schedule, pre-training against instruction tuning, epochs over a small set
against fresh sentences, and diffusion against the autoregressive twin on the same data. Each run is a
`LabJob` (a training.TrainingJob whose worker also measures the trained model: `final_metrics`), and each
finished run gets one sentence computed from its numbers (`reading`), as does the preset (`verdict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from dlm_core.studies import training
from dlm_core.toy_language import L, support, support_arrays
from dlm_core.variants import masked_objectives
from dlm_core.variants.registry import get

BITS = L * math.log(2)  # nats per sentence -> bits per unit
N_VALIDITY = 1000  # samples for each sampled validity of a finished run


@dataclass(frozen=True)
class LabRun:
    label: str  # what the page and the table call it
    overrides: dict = field(default_factory=dict)  # TrainConfig fields that differ from the variant's recipe
    variant: str = "masked"


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    point: str  # the article's point, in one or two plain sentences
    runs: tuple[LabRun, ...]
    steps: int = 400  # training steps of every run (the masked recipe's)
    base: dict = field(default_factory=dict)  # overrides every run shares

    @property
    def by_epoch(self) -> bool:
        """Whether every run sees a fixed training set (its curve is drawn against epochs)."""
        return all({**self.base, **r.overrides}.get("train_size", 0) > 0 for r in self.runs)


SAMPLED = {"targets": "sampled"}  # learn from the drawn sentences, as any real model must
PRESETS: dict[str, Preset] = {p.key: p for p in (
    Preset("weighting", "The loss weighting",
           "MD4, MDLM and RADD train a masked model with a cross-entropy on the masked units weighted by the time: "
           "with those weights the loss is the NELBO, a bound on the likelihood. Without them it learns the same "
           "predictions, but its loss is no bound; BERT's fixed 15 % never shows the model a mostly masked sentence.",
           (LabRun("1/t (NELBO, MDLM)", {"weighting": "elbo"}), LabRun("L/k (NELBO, RADD)", {"weighting": "k"}),
            LabRun("unweighted cross-entropy", {"weighting": "unweighted"}),
            LabRun("BERT, 15 % masked", {"weighting": "bert"}))),
    Preset("time", "The time input",
           "Given which units are masked, the best prediction does not depend on the time (RADD), so a masked model "
           "can drop the time input and lose nothing.",
           (LabRun("no time input", {}), LabRun("time input", {"time_input": True})), base={"weighting": "elbo"}),
    Preset("schedule", "The noising schedule",
           "The schedule decides how often each masking level is seen and how it is weighted; with the NELBO's "
           "weight every schedule estimates the same bound, only more or less noisily.",
           (LabRun("linear", {"schedule": "linear"}), LabRun("cosine", {"schedule": "cosine"}),
            LabRun("geometric", {"schedule": "geometric"})), base={"weighting": "elbo"}),
    Preset("instruction", "Pre-training against instruction tuning",
           "LLaDA's instruction tuning masks only the response, never the prompt: the model learns to answer a "
           "prompt, not to write from nothing. Here the prompt is the subject of the sentence.",
           (LabRun("pre-training (anything masked)", {}), LabRun("instruction (subject never masked)",
                                                                 {"task": "instruction"})), base=SAMPLED),
    Preset("epochs", "Epochs over a small set against fresh sentences",
           "A diffusion model needs many passes over its data, each with new masks, to reach the loss an "
           "autoregressive model reaches in one; with too few different sentences it learns them by heart.",
           (LabRun("fresh sentences", {}), LabRun("2,000 sentences", {"train_size": 2000}),
            LabRun("200 sentences", {"train_size": 200})), steps=800, base=SAMPLED),
    Preset("versus-ar", "Diffusion against autoregression on the same data",
           "On the same 500 sentences the autoregressive twin (the same network with a causal mask) learns in fewer "
           "epochs, then starts learning them by heart; the diffusion model sees each sentence under new masks every "
           "epoch and keeps improving for longer (Prabhudesai et al. 2025, section 4 of the article).",
           (LabRun("autoregressive twin", {}, variant="autoregressive"), LabRun("masked diffusion", {})),
           steps=800, base={**SAMPLED, "train_size": 500}),
)}


def run_config(preset: Preset, run: LabRun, steps: int | None = None, seed: int = 0) -> training.TrainConfig:
    """The recipe of one run: the variant's, with the preset's and the run's choices."""
    return training.default_config(run.variant, steps=steps or preset.steps, seed=seed,
                                   **{**preset.base, **run.overrides})


# ------------------------------------------------------------------------------ measuring a run


def floor_name(task: str) -> str:
    return "H" if task == "pretrain" else "H(response | subject)"


def subjects() -> list[tuple[tuple[int, ...], float]]:
    """Every subject (the units before the verb) with its exact probability."""
    out: dict[tuple, float] = {}
    for x, p in support().items():
        n = int(masked_objectives.prompt_lengths(torch.tensor([x]))[0])
        out[x[:n]] = out.get(x[:n], 0.0) + float(p)
    return sorted(out.items())


def validity(variant, model, seed: int = 0) -> tuple[float, float]:
    """(unconditional, given the subject) share of samples that are sentences of the language: N_VALIDITY samples
    from nothing; N_VALIDITY spread over the subjects, each subject pinned and weighted by its probability. Masked
    models sample in random order, one unit per step (the sampler whose likelihood the NELBO bounds)."""
    opts = {"strategy": "random"} if "random" in getattr(variant.config_class, "strategies", ()) else {}
    index = support_arrays().index
    free = variant.sample(model, N_VALIDITY, max(L, variant.min_steps), seed=seed, **opts).tolist()
    uncond = float(np.mean([tuple(x) in index for x in free]))
    subs = subjects()
    cond, per = 0.0, max(1, N_VALIDITY // len(subs))
    for j, (s, p) in enumerate(subs):
        x = variant.sample(model, per, L - len(s), seed=seed + 1 + j, pins=tuple(enumerate(s)), **opts).tolist()
        cond += p * float(np.mean([tuple(r) in index for r in x]))
    return uncond, cond


def final_metrics(cfg: training.TrainConfig, model, losses: list[float]) -> dict:
    """What the table shows of a finished run: its bound and floor, both bounds (from nothing and given the
    subject), its last training loss (bits per unit: a bound only for the NELBO's weightings) and validities."""
    variant = get(cfg.variant)
    model.eval()
    with torch.no_grad():
        uncond = variant.training_bound(model, replace(cfg, task="pretrain", targets="sampled"))
        given = variant.training_bound(model, replace(cfg, task="instruction", targets="sampled"))
        v_free, v_given = validity(variant, model, seed=cfg.seed)
    tail = losses[-max(1, len(losses) // 10):]
    bound = uncond if cfg.task == "pretrain" else given
    floor = masked_objectives.floor_bits(cfg.task)
    return {"bound_bits": bound, "floor_bits": floor, "gap_bits": bound - floor, "floor_name": floor_name(cfg.task),
            "uncond_gap_bits": uncond - masked_objectives.floor_bits("pretrain"),
            "given_gap_bits": given - masked_objectives.floor_bits("instruction"),
            "train_loss_bits": float(np.mean(tail)) / BITS, "validity": v_free, "validity_given_subject": v_given,
            # an autoregressive loss is its exact NLL, a bound whatever the weighting choice says
            "loss_is_bound": cfg.weighting in ("k", "elbo") or variant.family == "autoregressive"}


def lab_run_in_worker(send, cancelled, config: dict, eval_every: int) -> dict:
    """A LabJob in a worker process of the job queue: train (streaming the curve), then measure the model there."""
    from safetensors.torch import save as save_tensors

    cfg = training.TrainConfig(**config)
    result = training.train(cfg, callback=training._progress(send, cancelled, eval_every, cfg))
    state = {k: v.detach().contiguous() for k, v in result.model.state_dict().items()}
    return {"state": save_tensors(state), "losses": result.losses, "steps_done": result.steps_done,
            "wall_time_s": result.wall_time_s, "stopped": result.stopped,
            "final": final_metrics(cfg, result.model, result.losses)}


class LabJob(training.TrainingJob):
    """One run of a preset in the server's queue: its live curve, then `final` (final_metrics) and its reading."""

    WORKER = "dlm_core.studies.training_lab:lab_run_in_worker"

    def __init__(self, cfg: training.TrainConfig, label: str, **kw):
        super().__init__(cfg, eval_every=max(1, cfg.steps // 10), **kw)
        self.label = label

    def finish(self, result: training.TrainResult) -> dict:
        return {"final": final_metrics(self.cfg, result.model, result.losses)}

    @property
    def final(self) -> dict | None:
        return self.output.get("final")


def start(preset: Preset, steps: int | None = None, seed: int = 0, owner=None, queue=None,
          in_worker_process: bool = True) -> list[LabJob]:
    """Every run of a preset, in the queue's line one after another (first in, first out)."""
    return [LabJob(run_config(preset, run, steps, seed), run.label, owner=owner, queue=queue,
                   in_worker_process=in_worker_process).start() for run in preset.runs]


# ------------------------------------------------------------------------------------ sentences


def epochs_of(cfg: training.TrainConfig, step: int) -> float | None:
    """How many passes over its fixed training set a run has made after `step` steps (None: fresh sentences)."""
    return step * cfg.batch_size / cfg.train_size if cfg.train_size else None


def reading(cfg: training.TrainConfig, final: dict, wall_s: float, curve: list[tuple[int, float]],
            given: bool = False) -> str:
    """One sentence on a finished run, computed from its numbers (`given`: say its bound given the subject too,
    where the preset compares tasks)."""
    out = (f"Ends {final['gap_bits']:+.4f} bits per unit above {final['floor_name']} after {wall_s:.0f} s")
    if given and cfg.task == "pretrain":
        out += (f"; given a subject its bound is {final['given_gap_bits']:+.4f} above H(response | subject)"
                + (": it does not know where the prompt ends" if final["given_gap_bits"] > 0.01 else ""))
    if not final["loss_is_bound"] and final["train_loss_bits"] < final["floor_bits"]:
        out += (f"; its training loss ({final['train_loss_bits']:.3f}) sits below that floor "
                f"({final['floor_bits']:.3f}), so it is not a bound")
    elif cfg.train_size and final["train_loss_bits"] < final["floor_bits"]:
        out += (f"; its training loss ({final['train_loss_bits']:.3f}) is below the floor: it fits its "
                f"{cfg.train_size:,} sentences better than the language allows")
    if cfg.task == "instruction" or final["validity"] < 0.5 <= final["validity_given_subject"]:
        out += (f"; given a subject {final['validity_given_subject']:.0%} of its answers are sentences, from nothing "
                f"{final['validity']:.0%}")
    if cfg.train_size and curve:
        best_step, best = min(curve, key=lambda c: c[1])
        last = curve[-1][1]
        out += (f"; {epochs_of(cfg, cfg.steps):.0f} epochs over {cfg.train_size:,} sentences, lowest "
                f"{best - final['floor_bits']:+.4f} at epoch {epochs_of(cfg, best_step):.0f}"
                + (f", then up by {last - best:.4f} (learning them by heart)" if last - best > 0.002 else ""))
    return out + "."


def verdict(runs: list[tuple[str, float]]) -> str:
    """One sentence comparing the finished runs of a preset by their gap to the floor: (label, gap) pairs."""
    if len(runs) < 2:
        return ""
    ranked = sorted(runs, key=lambda r: r[1])
    (best, g0), (worst, g1) = ranked[0], ranked[-1]
    spread = g1 - g0
    if spread < 0.002:
        return (f"All {len(runs)} runs end within {spread:.4f} bits per unit of each other: here this choice changes "
                "what the model learns by less than the noise of a short training.")
    return (f"Closest to the floor: {best} ({g0:+.4f} bits per unit); furthest: {worst} ({g1:+.4f}), "
            f"{spread:.4f} further.")


def preset_rows(preset) -> list[dict]:
    """The page's table of a preset's runs: each run's label, model and the choices that differ."""
    return [{"run": r.label, "model": r.variant,
             "its choices": ", ".join(f"{k} = {v}" for k, v in {**preset.base, **r.overrides}.items()) or "the recipe"}
            for r in preset.runs]


def result_rows(jobs) -> list[dict]:
    """The page's table of a preset's runs as they stand: where each is, or its final numbers."""
    rows = []
    for j in jobs:
        f = j.final
        if f is None:
            state = "waiting" if j.waiting else "training" if j.running else (j.error and "failed") or "stopped"
            rows.append({"run": j.label, "bound − floor (bits/unit)": state, "given the subject (bits/unit)": "",
                         "training loss (bits/unit)": "", "valid from nothing": "", "valid given the subject": "",
                         "wall time": ""})
            continue
        loss = f"{f['train_loss_bits']:.3f}" + ("" if f["loss_is_bound"] else " (not a bound)")
        rows.append({"run": j.label, "bound − floor (bits/unit)": f"{f['gap_bits']:+.4f} ({f['floor_name']})",
                     "given the subject (bits/unit)": f"{f['given_gap_bits']:+.4f} (H(response | subject))",
                     "training loss (bits/unit)": loss, "valid from nothing": f"{f['validity']:.1%}",
                     "valid given the subject": f"{f['validity_given_subject']:.1%}",
                     "wall time": f"{j.result.wall_time_s:.0f} s"})
    return rows
