"""Command-line interface: python -m dlm_core {train, sample, eval, compare, generate, infill, order-study, data-study,
language} ...

stdout carries only the results (samples, JSON); progress and messages go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace

import torch

from dlm_core.sampling.block_cache import CACHE_MODES
from dlm_core.sampling.masked_sampler import ALL_STRATEGIES, STRATEGIES
from dlm_core.schedules import SCHEDULES
from dlm_core.studies import training
from dlm_core.toy_language import decode
from dlm_core.variants.evaluate import EvalSettings
from dlm_core.variants.hf_adapter import ModelLoadError
from dlm_core.variants.registry import VARIANTS, get


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes as one line on stderr (exit code 2), like every other error of the CLI."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see --help)\n")


def _err(msg: str) -> int:
    print("error: " + " ".join(str(msg).split()), file=sys.stderr)  # one line, whatever the message
    return 2


def load_toy(variant: str, checkpoint: str | None):
    path = checkpoint or training.default_checkpoint(variant)
    model, meta = training.load_checkpoint(path)
    if meta.get("variant") != variant:
        raise training.CheckpointError(f"{path} holds a {meta.get('variant')!r} model, not {variant!r}")
    return model, meta


LAB_FLAGS = ("weighting", "time_input", "task", "train_size", "targets", "schedule")  # the training lab's choices


def cmd_train(a) -> int:
    lab = {k: getattr(a, k) for k in LAB_FLAGS if getattr(a, k) not in (None, False)}
    cfg = training.default_config(a.variant, seed=a.seed, steps=a.steps, batch_size=a.batch_size, lr=a.lr, **lab)
    if a.out is None and training.lab_choices(cfg):  # the shipped checkpoints hold the recipes, not lab runs
        raise ValueError("a training with a lab choice needs --out DIR (the shipped checkpoint keeps its recipe)")
    t0 = time.perf_counter()
    result = training.train(cfg, progress=True)
    print("evaluating ...", file=sys.stderr)
    # the bound with the full settings (exact for masked; n_t = 1000 and seed 0 otherwise, so checkpoint.json
    # holds the number `eval` prints); the sampled metrics use the quick setting (seconds, not minutes)
    metrics = get(a.variant).evaluate(result.model, EvalSettings.quick(n_t=EvalSettings.n_t)).to_dict()
    out = training.save_checkpoint(result, a.out or training.default_checkpoint(a.variant), metrics)
    wall = time.perf_counter() - t0
    report = {
        "checkpoint": str(out),
        "train_wall_time_s": round(result.wall_time_s, 2),
        "train_cpu_time_s": round(result.cpu_time_s, 2),
        "total_wall_time_s": round(wall, 2),
        "nelbo_bits_per_unit": metrics["nelbo_bits_per_unit"],
        "nelbo_stderr_bits": metrics["nelbo_stderr_bits"],
        "entropy_bits_per_unit": metrics["entropy_bits_per_unit"],
        "nelbo_over_entropy": metrics["nelbo_over_entropy"],
    }
    if training.lab_choices(cfg):  # what the Training lab page shows of a run (its bound against its floor)
        from dlm_core.studies import training_lab

        report["lab"] = {"choices": training.lab_choices(cfg),
                         **training_lab.final_metrics(cfg, result.model, result.losses)}
    print(json.dumps(report))
    return 0


def sampler_options(a) -> dict:
    """The sampler options given on the command line (the variant's config rejects any it lacks)."""
    given = {"strategy": a.strategy, "temperature": a.temperature, "block_length": a.block_length,
             "schedule": a.schedule, "clamp": a.clamp or None, "threshold": a.threshold}
    return {k: v for k, v in given.items() if v is not None}


def cmd_sample(a) -> int:
    model, _ = load_toy(a.variant, a.checkpoint)
    torch.set_num_threads(1)
    x = get(a.variant).sample(model, a.n, a.steps, seed=a.seed, **sampler_options(a))
    lines = [decode(row) for row in x.tolist()]
    sys.stdout.write("\n".join(lines) + ("\n" if lines else ""))
    return 0


def cmd_eval(a) -> int:
    model, meta = load_toy(a.variant, a.checkpoint)
    settings = EvalSettings.quick(schedule=a.schedule) if a.quick else EvalSettings(schedule=a.schedule)
    metrics = get(a.variant).evaluate(model, settings).to_dict()  # the full settings take minutes
    metrics["checkpoint"] = str(a.checkpoint or training.default_checkpoint(a.variant))
    if a.json:
        print(json.dumps(metrics))
    else:
        for k, v in metrics.items():
            print(f"{k}: {v}")
    return 0


def cmd_generate(a) -> int:
    from dlm_core.variants import hf_adapter
    from dlm_core.variants.real import VARIANT as REAL

    if a.trust_remote_code:
        print(f"warning: {hf_adapter.REMOTE_CODE_WARNING}", file=sys.stderr)
    opts = hf_adapter.LoadOptions(trust_remote_code=a.trust_remote_code, device=a.device, dtype=a.dtype)
    lm = hf_adapter.load(a.model, opts)
    threshold = {} if a.threshold is None else {"threshold": a.threshold}
    cfg = REAL.sampler_config(a.steps, a.seed, gen_length=a.gen_length, strategy=a.strategy,
                              temperature=a.temperature, **threshold, block_length=a.block_length, cfg_scale=a.cfg,
                              top_k=a.top_k, cache=a.cache)
    traj = REAL.generate(lm, a.prompt, a.gen_length, cfg, use_chat_template=not a.no_chat_template,
                         suppress_eos=a.suppress_eos)
    if a.json:
        print(traj.to_json())
    else:
        gen = traj.final[traj.gen_start: traj.gen_start + a.gen_length]
        print(lm.decode(gen))
    return 0


def cmd_compare(a) -> int:
    from dlm_core.studies import compare

    out = _out_path(a.out)  # fail before minutes of work
    settings = compare.CompareSettings.quick() if a.quick else compare.CompareSettings()
    if a.samples is not None:
        if a.samples < 100:
            print("error: --samples must be at least 100 (the validity's standard error is then about 5 points)",
                  file=sys.stderr)
            return 2
        settings = replace(settings, n_samples=a.samples)

    results = compare.compute(settings, progress=_progress)
    text = json.dumps(results, indent=None if a.json else 2)
    _write_results(out, results)
    print(text)
    return 0


def cmd_infill(a) -> int:
    """Fill the free positions given the pins, against the language's exact conditional (dlm_core/studies/infill.py)."""
    from dlm_core.studies import infill, infill_run

    pins = infill.parse_pins(a.pin or [])  # positions from 1, units by name
    given = {"strategy": a.strategy, "temperature": a.temperature, "block_length": a.block_length,
             "schedule": a.schedule, "remask_eta": a.eta, "clamp": a.clamp or None}
    if a.all:  # every variant and masked strategy, each at its default steps: the page's table
        results = infill_run.infill_by_variant(lambda v: load_toy(v, None)[0], pins, a.n, a.seed)
    else:
        settings = infill_run.InfillSettings.make(a.variant, pins, a.steps, a.n, a.seed,
                                              **{k: v for k, v in given.items() if v is not None})
        infill.language_conditional(pins)  # impossible pins: say so before loading anything
        results = [infill_run.run_infill(load_toy(a.variant, a.checkpoint)[0], settings)]
    if a.json:
        out = [r.to_dict() for r in results]
        print(json.dumps(out if a.all else out[0]))
    else:
        print("\n\n".join(infill_run.format_result(r) for r in results))
    return 0


def cmd_order_study(a) -> int:
    """The unmasking-order study (dlm_core/order_study.py): what is committed first, toy and real model."""
    import shlex

    from dlm_core.studies import order_measures, order_study

    out = _out_path(a.out)  # fail before minutes of work
    argv = ["--json"] * a.json + ["--quick"] * a.quick + (["--model", a.model] if a.model else []) + (
        ["--out", a.out] if a.out else [])
    command = shlex.join(["python", "-m", "dlm_core", "order-study", *argv])
    settings_class = order_measures.OrderStudySettings
    settings = (settings_class.quick if a.quick else settings_class)(command=command)
    lm = None
    if a.model:
        from dlm_core.variants import hf_adapter

        lm = hf_adapter.load(a.model)

    results = order_study.compute(settings, progress=_progress, lm=lm)
    _write_results(out, results)
    print(json.dumps(results) if a.json else order_study.summary_text(results))
    return 0


def _progress(frac: float, text: str) -> None:
    """A long command's progress, on stderr (stdout keeps the JSON)."""
    print(f"[{frac:4.0%}] {text}", file=sys.stderr, flush=True)


def _write_results(path, results: dict) -> None:
    """Write a study's results to its --out file (checked by _out_path before the work), if one was given."""
    if path is None:
        return
    try:
        path.write_text(json.dumps(results, indent=1) + "\n")
    except OSError as e:
        raise ValueError(f"cannot write {path}: {e.strerror or e}") from e
    print(f"wrote {path}", file=sys.stderr)


def _out_path(out: str | None):
    """The --out file, checked before minutes of work (a clear error for a folder or a missing one)."""
    from pathlib import Path

    path = Path(out) if out else None
    if path is not None and (path.is_dir() or not path.parent.is_dir()):
        raise ValueError(f"cannot write {out}: " + ("it is a folder" if path.is_dir() else
                                                   f"there is no folder {path.parent}"))
    return path


def cmd_data_study(a) -> int:
    """The data-constrained study (dlm_core/studies/data_study.py): AR against masked diffusion on U sentences."""
    import shlex

    from dlm_core.studies import data_study

    out = _out_path(a.out)
    argv = ["--json"] * a.json + ["--quick"] * a.quick + (["--out", a.out] if a.out else [])
    settings = data_study.DataStudySettings.quick() if a.quick else data_study.DataStudySettings()

    results = data_study.compute(settings, _progress, shlex.join(["python", "-m", "dlm_core", "data-study", *argv]))
    _write_results(out, results)
    print(json.dumps(results) if a.json else "\n".join(results["findings"]))
    return 0


def cmd_language(a) -> int:
    """The support size and the exact entropy of a toy language (the larger one: by enumeration and by the grammar)."""
    from dlm_core import toy_language, toy_language_large

    if a.large:
        stats = toy_language_large.stats()
    else:
        stats = {"language": "toy (docs/toy-language.md)", "units": toy_language.V, "max_length": toy_language.L,
                 "support_size": toy_language.support_size(), "entropy_bits_per_sentence": toy_language.entropy_bits(),
                 "entropy_bits_per_unit": toy_language.entropy_bits_per_unit()}
    print(json.dumps(stats) if a.json else "\n".join(f"{k}: {v}" for k, v in stats.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m dlm_core", description="Toy diffusion language models.")
    sub = p.add_subparsers(dest="command", required=True)
    variants = list(VARIANTS)

    t = sub.add_parser("train", help="train a toy model and save a checkpoint")
    t.add_argument("--variant", choices=variants, required=True)
    t.add_argument("--steps", type=int)
    t.add_argument("--batch-size", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", help="checkpoint directory (default: the shipped one in assets/)")
    lab = t.add_argument_group("the training lab's choices (docs/maths.md section 10; default: the recipe)")
    lab.add_argument("--weighting", choices=training.WEIGHTINGS,
                     help="masked: k (exactly k masks, weight L/k), elbo (t drawn, weight 1/t for linear), "
                          "unweighted (not a bound), bert (15 %% masked, not a bound)")
    lab.add_argument("--time-input", action="store_true", help="masked: give the denoiser the noise level")
    lab.add_argument("--schedule", choices=SCHEDULES, help="alpha_t of the drawn t (elbo, unweighted; uniform)")
    lab.add_argument("--task", choices=training.TASKS, help="instruction: never mask the subject (the prompt)")
    lab.add_argument("--train-size", type=int, metavar="U",
                     help="epochs over a fixed set of U sentences drawn from p (default: fresh sentences)")
    lab.add_argument("--targets", choices=("exact", "sampled"),
                     help="the loss's targets: the language's posterior (exact) or the drawn sentence (sampled)")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="print samples, one per line")
    s.add_argument("--variant", choices=variants, required=True)
    s.add_argument("--n", type=int, default=10)
    s.add_argument("--steps", type=int, default=6)
    s.add_argument("--strategy", choices=ALL_STRATEGIES, help="masked: default low-confidence; others: ancestral")
    s.add_argument("--threshold", type=float,
                   help="masked, strategy threshold: commit every unit whose confidence is at least this (default 0.9)"
                        "; --steps is then the most steps it may take")
    s.add_argument("--block-length", type=int, help="masked: semi-autoregressive blocks")
    s.add_argument("--temperature", type=float, help="masked: candidates from softmax(logits / temperature) "
                                                      "(default 1; 0: the most likely)")
    s.add_argument("--schedule", choices=SCHEDULES, help="alpha_t of the reverse step (default linear)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--clamp", action="store_true", help="gaussian: snap x-hat to the nearest embedding")
    s.add_argument("--checkpoint")
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser("eval", help="exact metrics against the toy language")
    e.add_argument("--variant", choices=variants, required=True)
    e.add_argument("--json", action="store_true")
    e.add_argument("--schedule", choices=SCHEDULES, default="linear")
    e.add_argument("--quick", action="store_true",
                   help="fewer samples and times: seconds, not minutes (exact numbers are unchanged)")
    e.add_argument("--checkpoint")
    e.set_defaults(func=cmd_eval)

    c = sub.add_parser("compare", help="the Compare page's numbers for the three shipped toy models")
    c.add_argument("--json", action="store_true", help="one JSON object on stdout")
    c.add_argument("--quick", action="store_true", help="2,000 samples per cell instead of 20,000")
    c.add_argument("--samples", type=int, help="samples per sampled cell (default 20,000; 2,000 with --quick)")
    c.add_argument("--out", help="also write the results to this file")
    c.set_defaults(func=cmd_compare)

    g = sub.add_parser("generate", help="generate with a real masked diffusion LM (hub id or local path)")
    g.add_argument("--model", help="hub id or local path (default: the embedded model)")
    g.add_argument("--prompt", default="")
    g.add_argument("--gen-length", type=int, default=64)
    g.add_argument("--steps", type=int, help="default 64; threshold: the most steps it may take (default: the "
                                             "generation length)")
    g.add_argument("--block-length", type=int)
    g.add_argument("--strategy", choices=[s for s in ALL_STRATEGIES if s != "ancestral"], default="low-confidence")
    g.add_argument("--threshold", type=float, help="strategy threshold: commit every token whose confidence is at "
                                                  "least this (default 0.9)")
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--cfg", type=float, default=0.0, help="unsupervised classifier-free guidance scale w")
    g.add_argument("--cache", choices=CACHE_MODES, default="off",
                   help="block cache (BERT-style models): keep the finished blocks' keys and values (prefix), and "
                        "the later positions' too (dual)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--top-k", type=int, default=10, help="how many predicted tokens per position the JSON keeps")
    g.add_argument("--json", action="store_true", help="print the trajectory as JSON")
    g.add_argument("--no-chat-template", action="store_true")
    g.add_argument("--suppress-eos", action="store_true")
    g.add_argument("--trust-remote-code", action="store_true", help="run the checkpoint's own code (only if trusted)")
    g.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    g.add_argument("--dtype", choices=["float32", "float16", "bfloat16"])
    g.set_defaults(func=cmd_generate)

    f = sub.add_parser("infill", help="fill in the free positions given pinned units; exact truth beside it")
    f.add_argument("--variant", choices=variants, default="masked")
    f.add_argument("--pin", action="append", metavar="POS=UNIT", help="e.g. --pin 2=our (positions from 1; repeat)")
    f.add_argument("--strategy", choices=STRATEGIES, help="masked: default random (its infill is known exactly)")
    f.add_argument("--steps", type=int, help="default: one per free position (masked), else the variant's")
    f.add_argument("--n", type=int, default=2000, help="completions to sample")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--temperature", type=float)
    f.add_argument("--block-length", type=int)
    f.add_argument("--schedule", choices=SCHEDULES)
    f.add_argument("--eta", type=float, help="masked ancestral: ReMDM remasking eta")
    f.add_argument("--clamp", action="store_true", help="gaussian: snap x-hat to the nearest embedding")
    f.add_argument("--all", action="store_true", help="every variant and masked strategy at its default steps")
    f.add_argument("--json", action="store_true")
    f.add_argument("--checkpoint")
    f.set_defaults(func=cmd_infill)

    o = sub.add_parser("order-study", help="which positions, roles and word classes are unmasked first")
    o.add_argument("--json", action="store_true", help="one JSON object on stdout (else a short summary)")
    o.add_argument("--quick", action="store_true", help="fewer sentences and generations: about a minute")
    o.add_argument("--model", help="hub id or local path of the real masked LM (default: the embedded model)")
    o.add_argument("--out", help="also write the results to this file")
    o.set_defaults(func=cmd_order_study)

    d = sub.add_parser("data-study", help="AR against masked diffusion on few sentences for many epochs")
    d.add_argument("--json", action="store_true", help="one JSON object on stdout (else its two findings)")
    d.add_argument("--quick", action="store_true",
                   help="small models, three small U, three epoch counts: about half a minute")
    d.add_argument("--out", help="also write the results to this file")
    d.set_defaults(func=cmd_data_study)

    lg = sub.add_parser("language", help="the support size and exact entropy of a toy language")
    lg.add_argument("--large", action="store_true", help="the larger toy language (docs/toy-language-large.md)")
    lg.add_argument("--json", action="store_true", help="one JSON object on stdout")
    lg.set_defaults(func=cmd_language)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "n", 1) < 0:
        return _err("--n must be >= 0")
    try:
        return args.func(args)
    except (ValueError, training.CheckpointError, ModelLoadError) as e:  # one clear line, no traceback
        return _err(str(e))
    except OSError as e:  # a file that cannot be read or written
        return _err(f"{e.strerror or e}: {e.filename}" if getattr(e, "filename", None) else str(e))
