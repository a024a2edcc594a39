"""Predict, then reveal: questions whose answers are computed at run time from the models and
the exact maths of the toy language, never written down. Swap a checkpoint and the answers
follow (tests/test_lessons.py does exactly that).

A `Question` has a prompt, a few choices and `answer(models) -> Answer`: the index of the
right choice and one sentence saying why, with the number it was computed from. `models`
maps a variant's name to its toy model, and "real" to a function that returns the real model
(only the questions about it call it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from dlm_core.toy_language import ID, L, entropy_bits_per_unit, sample_metrics, support_arrays, unit_name
from dlm_core.variants.evaluate import VALIDITY_STEPS, EvalSettings
from dlm_core.variants.registry import VARIANTS

SEED = 7  # the seed the lessons show
# the diffusion variants: the questions about steps and rewrites compare them (the autoregressive baseline always
# writes one unit per step and never rewrites, so it would be a second right answer)
DIFFUSION = tuple(name for name, v in VARIANTS.items() if v.family == "diffusion")
RANGES = ("below 5 %", "5 to 25 %", "25 to 60 %", "above 60 %")


@dataclass(frozen=True)
class Answer:
    index: int  # the right choice
    why: str  # one sentence, with the computed number


@dataclass(frozen=True)
class Question:
    id: str
    prompt: str
    choices: tuple[str, ...]
    solve: Callable[[dict], Answer]

    def answer(self, models: dict) -> Answer:
        return self.solve(models)


def _range_index(p: float) -> int:
    return 0 if p < 0.05 else 1 if p < 0.25 else 2 if p < 0.60 else 3


# ------------------------------------------------------------------------- the solvers


def _ar_next(models: dict) -> Answer:
    """p(x3 = are | x1 = dog, x2 = s), from the exact language: the autoregressive view; beside it what the trained
    autoregressive twin predicts (when the models include it)."""
    sa = support_arrays()
    rows = (sa.x[:, 0] == ID["dog"]) & (sa.x[:, 1] == ID["s"])
    p = float(sa.p[rows & (sa.x[:, 2] == ID["are"])].sum() / sa.p[rows].sum())
    said = ""
    if models.get("autoregressive") is not None:
        import torch

        from dlm_core.variants.autoregressive import shift_right

        with torch.no_grad():
            x = torch.tensor([[ID["dog"], ID["s"], ID["are"], 0, 0, 0]])
            q = float(torch.softmax(models["autoregressive"](shift_right(x))[0, 2].double(), -1)[ID["are"]])
        said = f" The trained autoregressive twin gives it {q:.3f}."
    return Answer(_range_index(p) if p < 0.99 else 4,
                  f"After “dog s” the language always continues with a verb agreeing with a plural: p = {p:.3f}."
                  + said)


def _first_commit(models: dict) -> Answer:
    traj = VARIANTS["masked"].trajectory(models["masked"], 6, SEED, strategy="low-confidence")
    first = traj.records[0].committed[0]
    conf = traj.records[0].confidence[first]
    return Answer(first, f"At step 1 position {first + 1} had the most confident prediction "
                         f"({unit_name(traj.records[0].tokens[first])}, p = {conf:.2f}), so it is committed first.")


def _validity_at(steps: int) -> Callable[[dict], Answer]:
    def solve(models: dict) -> Answer:
        v = VARIANTS["masked"].exact_validity(models["masked"], steps)
        return Answer(_range_index(v), f"The exact valid mass of the {steps}-step ancestral sampler is {v:.1%}: "
                                       + ("all six units are drawn independently in one go, so they rarely agree."
                                          if steps == 1 else "units revealed later see the earlier ones."))
    return solve


def _coverage(models: dict) -> Answer:
    n = 2000
    cov = {s: sample_metrics(VARIANTS["masked"].sample(models["masked"], n, 6, seed=SEED, strategy=s).tolist())
           for s in ("random", "low-confidence")}
    a, b = cov["random"].coverage, cov["low-confidence"].coverage
    return Answer(0 if a >= b else 1, f"In {n} samples at 6 steps, random order produced {a} distinct valid "
                                      f"sentences and low-confidence {b}: confidence ordering favours the likely "
                                      "ones and loses diversity." if a >= b else
                  f"In {n} samples, low-confidence produced {b} distinct valid sentences and random order {a}.")


def _uniform_changes(models: dict) -> Answer:
    traj = VARIANTS["uniform"].trajectory(models["uniform"], 12, SEED)
    changed = 2 in traj.records[6].changed  # step 7 (after step 6 is shown)
    return Answer(0 if changed else 1, f"At step 7 the uniform model {'changed' if changed else 'kept'} position 3 "
                                       f"({unit_name(traj.tokens_at(6)[2])} → {unit_name(traj.tokens_at(7)[2])}): "
                                       "any position may still change at any step.")


def _gaussian_settled(models: dict) -> Answer:
    traj = VARIANTS["gaussian"].trajectory(models["gaussian"], 24, SEED)
    final = traj.final
    first = next(k for k in range(traj.n_steps + 1)
                 if all(traj.tokens_at(j) == final for j in range(k, traj.n_steps + 1)))
    idx = 0 if first <= 12 else 1 if first <= 18 else 2 if first <= 23 else 3
    return Answer(idx, f"The six nearest units stop changing at step {first} of 24: the Gaussian sampler decides "
                       "late, when the noise is small.")


def _nelbo_gap(models: dict) -> Answer:
    gap = VARIANTS["masked"].nelbo(models["masked"])[0] - entropy_bits_per_unit()
    idx = 0 if gap < 0.01 else 1 if gap < 0.05 else 2 if gap < 0.2 else 3
    return Answer(idx, f"The exact NELBO is {gap:+.4f} bits per unit above the entropy H: a bound can never go below "
                       "H, and a well-trained model gets close.")


def _fewest_steps(models: dict) -> Answer:
    """Each variant's validity at growing step budgets: exact where the variant can compute it
    (Variant.exact_validity), else from 1000 samples; the first budget with 90 % valid."""
    need = {}
    for name in DIFFUSION:
        variant = VARIANTS[name]
        need[name] = 10**9
        for T in VALIDITY_STEPS:
            v = variant.exact_validity(models[name], T)
            if v is None:
                v = sample_metrics(variant.sample(models[name], 1000, T, seed=SEED,
                                                  **variant.sampled_options(EvalSettings())).tolist()).validity
            if v >= 0.9:
                need[name] = T
                break
    order = DIFFUSION
    best = min(order, key=lambda k: (need[k], order.index(k)))
    said = ", ".join(f"{k} {need[k] if need[k] < 10**9 else 'more than 100'}" for k in order)
    return Answer(order.index(best), f"Steps needed for 90 % valid samples: {said}.")


def _never_changes(models: dict) -> Answer:
    """Count, in one 12-step run of each variant, how often a written unit was replaced by another."""
    rewrites = {}
    for name in DIFFUSION:
        traj = VARIANTS[name].trajectory(models[name], 12, SEED)
        pairs = (zip(traj.tokens_at(k - 1), traj.tokens_at(k)) for k in range(1, traj.n_steps + 1))
        rewrites[name] = sum(1 for step in pairs for a, b in step if a != b and traj.mask_id not in (a, b))
    order = DIFFUSION
    best = min(order, key=lambda k: (rewrites[k], order.index(k)))
    said = ", ".join(f"{k} {v}" for k, v in rewrites.items())
    return Answer(order.index(best), f"Units replaced by another unit in one 12-step run: {said}.")


def _t1_error(models: dict) -> Answer:
    m = sample_metrics(VARIANTS["masked"].sample(models["masked"], 2000, 1, seed=SEED, strategy="ancestral").tolist())
    errors = {k: v for k, v in m.reasons.items() if k != "valid"}
    top = max(errors, key=errors.get)
    order = ("padding", "agreement", "predicate_number", "other")
    return Answer(order.index(top), f"Of 2000 one-step samples, {errors[top]} had the error “{top.replace('_', ' ')}”"
                                    f" ({', '.join(f'{k.replace(chr(95), chr(32))} {v}' for k, v in errors.items())}).")


def _one_step_verdict(models: dict) -> Answer:
    from dlm_core.toy_language import REASON_WORDS, validity_reason

    traj = VARIANTS["masked"].trajectory(models["masked"], 1, SEED)
    reason = validity_reason(traj.final)
    sentence = " ".join(unit_name(i) for i in traj.final)
    return Answer(0 if reason == "valid" else 1, f"The one-step sample is “{sentence}”: {REASON_WORDS[reason]}.")


def _mid_flight(models: dict) -> dict:
    from dlm_core.studies import mid_flight

    return mid_flight.study(models["masked"], models["uniform"])


def _propagation(models: dict) -> Answer:
    valid = _mid_flight(models)["masked"]["valid"]
    return Answer(_range_index(valid), f"Every completion of “our [MASK] are your s [PAD]” breaks a rule, so the "
                                       f"masked model ends valid with probability {valid:.1%} (exact).")


def _repair(models: dict) -> Answer:
    u = _mid_flight(models)["uniform"]
    return Answer(0 if u["valid"] > 0.5 else 1, f"Given the same units at t = 1/3, the uniform model ended with a "
                                                f"valid sentence in {u['valid']:.1%} ± {u['valid_se']:.1%} of "
                                                "its runs.")


def _prefill(models: dict) -> Answer:
    p = _mid_flight(models)["prefill"]
    return Answer(_range_index(p["model_after"]), f"With the middle prefilled, the masked model opens with "
                                                  f"“{p['opening']}” with probability {p['model_after']:.1%} (exact); "
                                                  f"by itself, in {p['model_before']:.1%} of its runs.")


def _lowest_bound(models: dict) -> Answer:
    gaps = {name: VARIANTS[name].nelbo(models[name], EvalSettings(n_t=200))[0] - entropy_bits_per_unit()
            for name in DIFFUSION}
    best = min(DIFFUSION, key=gaps.get)
    return Answer(DIFFUSION.index(best), "NELBO − H in bits per unit: " + ", ".join(
        f"{k} {v:+.4f}" for k, v in gaps.items()) + ".")


def _guidance_valid(models: dict) -> Answer:
    from dlm_core.studies import guidance

    r = guidance.study(models["masked"], guidance.GuidanceSettings(n=2000))
    strong = list(r["by_w"].values())[-1]
    v = strong["valid"]["sampled"]
    return Answer(_range_index(v), f"At w = {strong['w']:g}, {v:.1%} of the trained model's guided samples are "
                                   f"sentences (a perfect model's: {strong['valid']['perfect_sampler']:.0%}): the tilt "
                                   "amplifies what the model gets wrong.")


def _real_threshold(models: dict) -> Answer:
    from dlm_core.studies.threshold_decoding import forward_passes
    from dlm_core.variants.real import VARIANT as REAL

    lm = models["real"]()
    cfg = REAL.sampler_config(gen_length=32, strategy="threshold", threshold=0.9, temperature=0.0, seed=SEED)
    passes = forward_passes(REAL.generate(lm, "to be or not to be, that is the", 32, cfg, suppress_eos=True))
    return Answer(0 if passes < 16 else 1 if passes < 32 else 2,
                  f"It took {passes} forward passes for 32 tokens.")


def _repeated_data(models: dict) -> Answer:
    """From the data-constrained study's results: at the last epoch, whose held-out loss is lower at each U."""
    from dlm_core.studies import data_study

    results = data_study.load_results()
    if results is None:
        return Answer(1, "The study's results are missing (python -m dlm_core data-study writes them).")
    lower = {}
    for run in results["runs"]:
        lower.setdefault(run["unique_sentences"], {})[run["family"]] = run["heldout_bits_per_sentence"][-1]
    dlm_wins = sum(f["dlm"] < f["ar"] for f in lower.values())
    last = max(max(r["epochs"]) for r in results["runs"])
    said = "; ".join(f"U = {u:,}: AR {f['ar']:.1f}, diffusion {f['dlm']:.1f}" for u, f in sorted(lower.items()))
    return Answer(1 if dlm_wins * 2 > len(lower) else 0,
                  f"Held-out loss after {last} epochs, bits per sentence: {said}.")


QUESTIONS: dict[str, Question] = {q.id: q for q in (
    Question("never-changes", "Which diffusion variant never replaces a unit once it has written it (plain "
                              "sampler)?", DIFFUSION, _never_changes),
    Question("ar-next", "An autoregressive model has written “dog s”. How likely is the next unit to be “are”?",
             (*RANGES, "certain (100 %)"), _ar_next),
    Question("first-commit", f"The low-confidence sampler (6 steps, seed {SEED}): which position does it commit "
                             "first?", tuple(f"position {i + 1}" for i in range(L)), _first_commit),
    Question("valid-T1", "With ONE step (all six units at once), what fraction of samples are valid sentences?",
             RANGES, _validity_at(1)),
    Question("valid-T6", "With six steps (about one unit per step), what fraction are valid?", RANGES,
             _validity_at(6)),
    Question("t1-error", "At one step, which error is the most common?",
             ("padding", "agreement", "predicate number", "other"), _t1_error),
    Question("coverage", "Which strategy produces MORE different valid sentences in 2000 samples?",
             ("random order", "low-confidence"), _coverage),
    Question("uniform-change", f"The uniform model (12 steps, seed {SEED}) is at step 6. Will position 3 change at "
                               "step 7?", ("yes", "no"), _uniform_changes),
    Question("gaussian-settle", f"The Gaussian sampler (24 steps, seed {SEED}): from which step on do the six units "
                                "stop changing?", ("by step 12", "steps 13-18", "steps 19-23", "only at step 24"),
             _gaussian_settled),
    Question("nelbo-gap", "How far above the entropy H is the shipped masked model's bound (NELBO − H)?",
             ("less than 0.01 bits per unit", "0.01 to 0.05", "0.05 to 0.2", "more than 0.2"), _nelbo_gap),
    Question("fewest-steps", "Which diffusion variant needs the fewest steps to make 90 % valid sentences?",
             DIFFUSION, _fewest_steps),
    Question("one-step-verdict", f"The masked model writes all six units in ONE step (seed {SEED}). Is its sentence "
                                 "valid?", ("yes", "no"), _one_step_verdict),
    Question("propagation", "From “our [MASK] are your s [PAD]”, how often does the masked model end with a valid "
                            "sentence?", RANGES, _propagation),
    Question("repair", "A uniform model is given the same units a third of the way from the end. Does it end valid "
                       "more often than not?", ("yes", "no"), _repair),
    Question("prefill", "Prefill “[MASK] are your cat [PAD] [MASK]”: how often does the masked model then open with "
                        "“you”?", RANGES, _prefill),
    Question("lowest-bound", "Which variant's bound (NELBO) is closest to the entropy H?", DIFFUSION, _lowest_bound),
    Question("guidance-valid", "With strong guidance (w = 4), what share of the trained model's guided samples are "
                               "valid sentences?", RANGES, _guidance_valid),
    Question("repeated-data", "Both models see the same few sentences for hundreds of epochs. Whose held-out loss "
                              "is lower at the end?", ("autoregressive", "diffusion"), _repeated_data),
    Question("real-threshold", "Threshold 0.9 on the embedded model, 32 tokens: how many forward passes?",
             ("fewer than 16", "16 to 31", "32: one per token"), _real_threshold),
)}
