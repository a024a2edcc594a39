"""One `Figure` per lesson view kind (classroom/lessons.py has the pieces): `figure(view, models, lm)`.

`models` maps a toy variant's name to its model; `lm()` returns the real model (loaded only by the views that
show it). The runs on a real model are short (24 to 48 tokens), at temperature 0 where the point is the
order, so a lesson shows the same text to everyone. No Streamlit here.
"""

from __future__ import annotations

from dlm_core.classroom.lesson_plan import SEED, SENTENCE, View
from dlm_core.classroom.lessons import (
    Figure,
    autoregressive_rows,
    autoregressive_trajectory,
    bound_finding,
    bound_rows,
    clamp_finding,
    clamp_table,
    error_counts,
    error_rows,
    exact_validity_curve,
    propagation_trajectories,
    steps_to_reach,
    strategy_finding,
    strategy_rows,
    strategy_table,
    validity_chart,
    verdict,
)

REAL_PROMPT = "to be or not to be, that is the"


def _autoregressive(models: dict) -> Figure:
    traj = autoregressive_trajectory(models)
    rows = autoregressive_rows(traj)
    gaps = [abs(float(r["model p(unit | before)"]) - float(r["exact p(unit | before)"])) for r in rows]
    worst = rows[max(range(len(rows)), key=gaps.__getitem__)]
    close = "to three decimals" if max(gaps) < 0.0005 else f"within {max(gaps):.3f}"
    finding = (f"At every step the trained model's probability of the next unit matches the language's exact one "
               f"{close}: it has learned the conditionals an autoregressive model writes with."
               if max(gaps) < 0.01 else
               f"Its largest miss is at step {worst['step']} (“{worst['unit']}”): {worst['model p(unit | before)']} "
               f"where the language says {worst['exact p(unit | before)']}.")
    return Figure(trajectory=traj, rows=rows, caption="The trained autoregressive twin against the exact language",
                  finding=finding)


def _reverse(view: View, models: dict) -> Figure:
    from dlm_core.variants.registry import VARIANTS

    a = view.args
    traj = VARIANTS[a["variant"]].trajectory(models[a["variant"]], a["steps"], a["seed"], **a["options"])
    return Figure(trajectory=traj, finding=verdict(traj))


def _forward(view: View, models: dict) -> Figure:
    from dlm_core.studies import forward
    from dlm_core.toy_language import encode
    from dlm_core.variants.registry import VARIANTS

    v = view.args["variant"]
    model = models[v] if VARIANTS[v].needs_model_for_forward() else None
    traj, states, _ = forward.forward_sweep(v, encode(SENTENCE), SEED, model=model)
    return Figure(trajectory=traj, stage={"words": forward.FORWARD_WORDS, "step_name": "noise level",
                                          "states": states, "title": f"{v} noise, t from 0 to 1"})


def _bert_toy(models: dict) -> Figure:
    from dlm_core.variants.registry import VARIANTS

    one, six = (VARIANTS["masked"].exact_validity(models["masked"], T) for T in (1, 6))
    rows = [{"steps": "1 (BERT's task: every position at once)", "valid (exact)": f"{one:.1%}"},
            {"steps": "6 (one unit per step)", "valid (exact)": f"{six:.1%}"}]
    return Figure(rows=rows, caption="The shipped masked model, ancestral sampler, exact over all 216 sentences",
                  finding=f"Filling all six positions in one pass gives a valid sentence {one:.1%} of the time; six "
                          f"passes give {six:.1%}. One pass is fine when a few words are missing, as in BERT's "
                          "training; from a blank canvas every unit is guessed without the others.")


def _real_run(lm, prompt: str | None, gen_length: int, **options):
    from dlm_core.variants.real import VARIANT as REAL

    cfg = REAL.sampler_config(gen_length=gen_length, temperature=0.0, seed=SEED, **options)
    return REAL.generate(lm, prompt, gen_length, cfg, suppress_eos=True)


def _text(traj) -> str:
    return (traj.text_per_step or [""])[-1]


def _mean_confidence(traj) -> float:
    """The mean probability the model gave each token it committed, when it committed it (from the records'
    top-k; a random order's own scores are not probabilities)."""
    probs = []
    for r in traj.records:
        for i in r.committed:
            probs += [p for t, p in zip(r.topk_ids[i], r.topk_probs[i]) if t == r.tokens[i]][:1] or [0.0]
    return sum(probs) / max(1, len(probs))


def _bert_real(lm) -> Figure:
    one = _real_run(lm(), REAL_PROMPT, 24, steps=1, strategy="low-confidence")
    many = _real_run(lm(), REAL_PROMPT, 24, steps=24, strategy="low-confidence")
    a, b = _mean_confidence(one), _mean_confidence(many)
    return Figure(trajectory=many, texts=[("one pass (BERT's task)", _text(one)), ("24 passes", _text(many))],
                  finding=f"Each token of the one-pass text had a mean probability of {a:.2f} when it was chosen, "
                          f"each of the 24-pass text {b:.2f}: "
                          + ("seeing its neighbours first makes the model surer." if b > a else
                             "here the one-pass guesses were no less sure, but they were chosen without their "
                             "neighbours."))


def _errors(view: View, models: dict) -> Figure:
    from dlm_core.variants.registry import VARIANTS

    counts = error_counts(models["masked"], steps=view.args.get("steps", 1))
    traj = VARIANTS["masked"].trajectory(models["masked"], view.args.get("steps", 1), SEED, strategy="ancestral")
    top = max((r for r in counts if r != "valid"), key=counts.get)
    return Figure(trajectory=traj, rows=error_rows(counts), caption="2000 one-step samples of the masked model",
                  finding=f"{verdict(traj)} Of 2000 one-step samples the most common error is "
                          f"“{top.replace('_', ' ')}”: {counts[top]} of them.")


def _propagation(view: View, models: dict) -> Figure:
    from dlm_core.studies import mid_flight

    results = mid_flight.study(models["masked"], models["uniform"])
    masked, uniform = propagation_trajectories(models)
    traj = masked if view.kind == "propagation_masked" else uniform
    rows = [{"outcome": r.replace("_", " "), "probability (masked, exact)": f"{p:.1%}"}
            for r, p in results["masked"]["by_reason"].items()]
    return Figure(trajectory=traj, rows=rows, caption="Every completion of “our [MASK] are your s [PAD]”, exact",
                  finding=verdict(traj) + " " + mid_flight.error_summary(results))


def _prefill_toy(models: dict) -> Figure:
    import torch

    from dlm_core.studies import mid_flight
    from dlm_core.variants.registry import VARIANTS

    results = mid_flight.study(models["masked"], models["uniform"])
    canvas = mid_flight.canvas_of(mid_flight.PREFILL)
    traj = VARIANTS["masked"].trajectory(models["masked"], sum(u == 13 for u in canvas), SEED,
                                         x_init=torch.tensor([canvas]), strategy="random")
    p = results["prefill"]
    rows = [{"": "the language", "before the prefill": f"{p['language_before']:.1%}", "after": "100%"},
            {"": "the masked model", "before the prefill": f"{p['model_before']:.1%} ± {p['model_before_se']:.1%}",
             "after": f"{p['model_after']:.1%} (exact)"}]
    return Figure(trajectory=traj, rows=rows, caption=f"How often a sentence opens with “{p['opening']}”",
                  finding=mid_flight.prefill_summary(results))


def _guidance_toy(models: dict) -> Figure:
    from dlm_core.studies import guidance

    r = guidance.study(models["masked"], guidance.GuidanceSettings(n=2000))
    rows = [{"w": f"{c['w']:g}", "TV: perfect model's sampler vs target": f"{c['tv_perfect_sampler_target']:.3f}",
             "TV: trained model's sampler vs target": f"{c['tv_model_sampler_target']:.3f}",
             "trained model's samples valid": f"{c['valid']['sampled']:.1%}"} for c in r["by_w"].values()]
    return Figure(rows=rows, caption=f"Prompt “{r['prompt']}”; 2000 samples per w", finding=guidance.summary(r))


def _guidance_real(lm) -> Figure:
    prompt = "the king"
    plain = _real_run(lm(), prompt, 24, steps=24, cfg_scale=0.0)
    guided = _real_run(lm(), prompt, 24, steps=24, cfg_scale=2.0)
    return Figure(trajectory=guided, texts=[("w = 0", _text(plain)), ("w = 2", _text(guided))],
                  finding=f"With the prompt “{prompt}”, guidance at w = 2 changed "
                          f"{sum(a != b for a, b in zip(plain.final, guided.final))} of the 24 tokens.")


def _prefill_real(lm) -> Figure:
    model = lm()
    phrase = model.tokenizer.encode("my lord", add_special_tokens=False)
    runs = []
    for gen_length in (16, 40):
        from dlm_core.variants.hf_adapter import build_canvas

        start = build_canvas(model, REAL_PROMPT, gen_length).gen_start
        at = start + gen_length // 2
        pins = tuple((at + j, t) for j, t in enumerate(phrase))
        runs.append(_real_run(model, REAL_PROMPT, gen_length, steps=gen_length, pins=pins))
    return Figure(trajectory=runs[0], texts=[(f"{r.settings['gen_length']} tokens, “my lord” prefilled in the middle",
                                              _text(r)) for r in runs],
                  finding="The prefilled words stay; what the model writes before and after them bends around them, "
                          "and the longer canvas gives " + ("another text." if _text(runs[0]) not in _text(runs[1])
                                                            else "the same text around them."))


def _real_blocks(lm) -> Figure:
    traj = _real_run(lm(), REAL_PROMPT, 48, steps=24, block_length=16)
    return Figure(trajectory=traj, texts=[("three blocks of 16 tokens", _text(traj))],
                  finding="The grid's dashed lines are the blocks' edges: no token of a block is committed before the "
                          "block to its left is full.")


def _real_strategies(lm) -> Figure:
    runs = [_real_run(lm(), REAL_PROMPT, 32, steps=16, strategy=s) for s in ("low-confidence", "random")]
    a, b = (_mean_confidence(r) for r in runs)
    return Figure(trajectory=runs[0], texts=[("low-confidence", _text(runs[0])), ("random order", _text(runs[1]))],
                  finding=f"The tokens low-confidence committed had a mean probability of {a:.2f}; those random order "
                          f"committed, {b:.2f}.")


def _real_threshold(lm) -> Figure:
    from dlm_core.studies.threshold_decoding import forward_passes

    fixed = _real_run(lm(), REAL_PROMPT, 32, steps=32, strategy="low-confidence")
    thr = _real_run(lm(), REAL_PROMPT, 32, steps=None, strategy="threshold", threshold=0.9)
    a, b = forward_passes(fixed), forward_passes(thr)
    return Figure(trajectory=thr, texts=[("fixed count, one token per pass", _text(fixed)),
                                         ("threshold 0.9", _text(thr))],
                  finding=f"One token per pass took {a} forward passes for 32 tokens; the threshold took {b}"
                          + (f", {1 - b / a:.0%} fewer." if b < a else ": this model is rarely sure enough to "
                                                                       "commit two tokens at once."))


def _validity(models: dict) -> Figure:
    curve = exact_validity_curve(models["masked"])
    reach = steps_to_reach(curve)
    return Figure(chart=validity_chart(curve), rows=[{"steps T": T, "valid (exact)": f"{v:.1%}"}
                                                     for T, v in curve.items()],
                  caption="The masked model, ancestral sampler, exact over all 216 sentences",
                  finding=f"The valid mass climbs from {curve[min(curve)]:.1%} at one step to {curve[max(curve)]:.1%} "
                          f"at {max(curve)}; "
                          + (f"{reach} steps are the fewest that reach 90 %." if reach else "no budget reaches 90 %."))


def _strategies(models: dict) -> Figure:
    table = strategy_table(models["masked"])
    return Figure(rows=strategy_rows(table), caption="2000 samples per strategy, 6 steps",
                  finding=strategy_finding(table))


def _bound(models: dict) -> Figure:
    from dlm_core.studies import compare

    results = compare.load_results()
    return Figure(rows=bound_rows(results), caption=f"From {results['command']}", finding=bound_finding(results))


def _clamping(models: dict) -> Figure:
    table = clamp_table(models["gaussian"])
    rows = [{"Gaussian sampler, 24 steps": k, "valid": f"{v['validity']:.1%} ± {v['validity_se']:.1%}",
             "different valid sentences": v["coverage"]} for k, v in table.items()]
    return Figure(rows=rows, caption="1000 samples each", finding=clamp_finding(table))


def _data_study() -> Figure:
    from dlm_core.render.study_figures import data_study_figure
    from dlm_core.studies import data_study

    results = data_study.load_results()
    if results is None:
        return Figure(finding="The data-constrained study's results are missing: `python -m dlm_core data-study "
                              "--json --out assets/data_study.json` makes them.")
    summary = data_study.summarise(results)
    us = sorted({r["unique_sentences"] for r in results["runs"]})
    middle = us[len(us) // 2]
    return Figure(plot=data_study_figure(results, middle), rows=data_study.summary_rows(summary),
                  caption=f"Held-out loss in bits per sentence; the chart: U = {middle:,} sentences",
                  finding=" ".join(data_study.findings({**results, "summary": summary})))


def _lab(view: View) -> Figure:
    from dlm_core.studies import training_lab

    preset = training_lab.PRESETS[view.args["preset"]]
    return Figure(rows=training_lab.preset_rows(preset), caption=f"The lab's preset “{preset.title}”: its runs",
                  finding=preset.point)


def _compare(models: dict) -> Figure:
    from dlm_core.studies import compare

    return Figure(rows=compare.summary_rows(compare.load_results(), 3), caption="The variants at 3 steps")


def figure(view: View, models: dict, lm=None) -> Figure:
    """What the step shows (the lab, the live training and the summary are drawn by the page itself)."""
    kind = view.kind
    toy = {"reverse": lambda: _reverse(view, models), "forward": lambda: _forward(view, models),
           "autoregressive": lambda: _autoregressive(models),
           "bert_toy": lambda: _bert_toy(models), "validity_curve": lambda: _validity(models),
           "errors": lambda: _errors(view, models), "propagation_masked": lambda: _propagation(view, models),
           "propagation_uniform": lambda: _propagation(view, models), "clamping": lambda: _clamping(models),
           "strategies": lambda: _strategies(models), "bound_vs_steps": lambda: _bound(models),
           "guidance_toy": lambda: _guidance_toy(models), "prefill_toy": lambda: _prefill_toy(models),
           "compare": lambda: _compare(models), "data_study": _data_study, "lab": lambda: _lab(view)}
    real = {"bert_real": _bert_real, "guidance_real": _guidance_real, "prefill_real": _prefill_real,
            "real_blocks": _real_blocks, "real_strategies": _real_strategies, "real_threshold": _real_threshold}
    if kind in toy:
        return toy[kind]()
    if kind in real:
        return real[kind](lm)
    return Figure()
