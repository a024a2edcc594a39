"""The lessons: short guided tours through the toy language, following the seed article.

Each lesson is a few steps; each step is at most three sentences, one live view set up for
it (a `View`: what to draw and with which settings, drawn by pages/views/lessons.py), a
"try this" suggestion and, where it fits, a prediction question (dlm_core/questions.py)
whose answer is computed at run time. No Streamlit here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlm_core.classroom.questions import SEED
from dlm_core.toy_language import UNITS, encode
from dlm_core.trajectory import Trajectory

SENTENCE = "dog s are our friend s"


@dataclass(frozen=True)
class View:
    kind: str  # left-to-right | reverse | forward | validity | strategies | train | compare
    args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    text: str  # at most three sentences
    view: View
    try_this: str = ""
    question: str | None = None  # a key of questions.QUESTIONS


@dataclass(frozen=True)
class Lesson:
    title: str
    steps: tuple[Step, ...]


def autoregressive_trajectory(model, sentence: str = SENTENCE) -> Trajectory:
    """The trained autoregressive twin writing `sentence`: one unit per step, left to right, each record with the
    model's prediction given the units before it (teacher forcing)."""
    from dlm_core.variants.autoregressive import teacher_forced_trajectory

    return teacher_forced_trajectory(model, encode(sentence))


def autoregressive_probabilities(traj: Trajectory) -> list[tuple[str, float, float]]:
    """(unit, the model's probability of it given the units before it, the language's exact one), per step of a
    teacher-forced trajectory."""
    import torch

    from dlm_core.variants.autoregressive import prefix_conditionals

    x = traj.final
    exact = prefix_conditionals(torch.as_tensor([x]))[0]
    out = []
    for k, rec in enumerate(traj.records):
        model_p = dict(zip(rec.topk_ids[k], rec.topk_probs[k])).get(x[k], 0.0)
        out.append((UNITS[x[k]], float(model_p), float(exact[k, x[k]])))
    return out


def reverse(variant: str, steps: int, seed: int = SEED, **options) -> View:
    return View("reverse", {"variant": variant, "steps": steps, "seed": seed, "options": options})


LESSONS: tuple[Lesson, ...] = (
    Lesson("Left to right, or all at once", (
        Step("An autoregressive model writes one token after another, left to right, each one conditioned on all "
             "before it. Here a trained one (the masked model's network with a causal mask) writes a sentence; "
             "under the stage, its probability of each unit beside the language's exact one.",
             View("left-to-right", {"sentence": SENTENCE}),
             "Press play and watch the sentence grow from the left.", "ar-next"),
        Step("A diffusion language model starts from a canvas of [MASK] tokens and fills positions in any order, "
             "several per step if it likes. Here a masked model writes a sentence in six steps.",
             reverse("masked", 6), "Scrub back and forth: which positions were filled first?", "first-commit"),
    )),
    Lesson("Three kinds of noise", (
        Step("Training corrupts sentences and teaches a model to undo it. Masked noise hides units behind [MASK], "
             "like the panels of Wheel of Fortune.", View("forward", {"variant": "masked"}),
             "Play the sweep: t goes from 0 (the sentence) to 1 (all masks)."),
        Step("Uniform noise replaces a unit with a random unit, like a slot machine: the noise looks like words.",
             View("forward", {"variant": "uniform"}), "At t = 1 every unit is equally likely: can you still tell "
                                                       "which sentence it was?"),
        Step("Gaussian noise blurs each unit's vector in an embedding space; the chips show the nearest unit.",
             View("forward", {"variant": "gaussian"}), "Scrub slowly near t = 0.5: when does each position lose "
                                                        "its unit?"),
    )),
    Lesson("The reverse process and the order of unmasking", (
        Step("Generation runs the reverse process: from noise, step by step, to a sentence. A masked model never "
             "changes a unit it has committed.", reverse("masked", 6, strategy="random"),
             "Compare the grid's orange cells (committed now) with the blue ones (kept)."),
        Step("The low-confidence sampler commits first the positions where the model is surest. Where it starts "
             "says what the model finds easy.", reverse("masked", 6, strategy="low-confidence"),
             "Change the seed in your head: is the easy position always the same?", "first-commit"),
    )),
    Lesson("How many steps? Parallel decoding and its errors", (
        Step("With one step the model fills all six positions at once, each from its own prediction, "
             "independently. Independent choices rarely agree with each other.", reverse("masked", 1),
             "Is the sentence valid? Most one-step sentences are not.", "valid-T1"),
        Step("With more steps, later units see the earlier ones, and agreement comes back. The curve is exact: it "
             "is computed over all 216 sentences, not sampled.", View("validity"),
             "Read off how many steps reach 90 % valid.", "valid-T6"),
        Step("The errors have names: a verb that does not agree, a missing plural s, padding in the middle.",
             reverse("masked", 1, strategy="ancestral"), "Which error does this one-step sample make?",
             "t1-error"),
    )),
    Lesson("Choosing what to unmask: strategies", (
        Step("Random order commits positions at random; low-confidence commits the surest first. Sureness is "
             "not free: the model keeps to sentences it likes.", View("strategies"),
             "Compare validity with coverage (different valid sentences).", "coverage"),
    )),
    Lesson("Changing its mind: self-correction", (
        Step("A uniform model can change any position at any step: vermillion cells changed at that step.",
             reverse("uniform", 12), "Count the changes: do they get rarer as t goes to 0?", "uniform-change"),
        Step("A Gaussian model moves vectors; the unit shown is the nearest one, and it settles late.",
             reverse("gaussian", 24), "Find the step where the sentence stops changing.", "gaussian-settle"),
        Step("ReMDM lets a masked model take a unit back: purple cells were masked again.",
             reverse("masked", 12, strategy="ancestral", remask_eta=0.4), "Find a unit that was taken back and "
                                                                           "replaced."),
    )),
    Lesson("Training and the entropy floor", (
        Step("Training shows the model corrupted sentences and asks for the originals. The loss is a bound "
             "(NELBO) that can never go below the language's entropy H.", View("train"),
             "Press Train: within about 10 seconds the curve falls to H.", "nelbo-gap"),
    )),
    Lesson("An honest comparison", (
        Step("The three variants on one footing: the same steps, the same samples, the exact H as the floor. "
             "Few steps is where they differ most.", View("compare"),
             "Which variant is most valid at 3 steps? And at 100?", "fewest-steps"),
    )),
)



def exact_validity_curve(model) -> dict[int, float]:
    """The exact valid mass of the masked ancestral sampler at every step budget (lesson 4)."""
    from dlm_core.variants.evaluate import VALIDITY_STEPS
    from dlm_core.variants.registry import VARIANTS

    return {T: VARIANTS["masked"].exact_validity(model, T) for T in VALIDITY_STEPS}


def strategy_table(model, n: int = 2000, steps: int = 6) -> dict[str, dict[str, str]]:
    """Validity, coverage and KL on valid samples of random order vs low-confidence (lesson 5)."""
    from dlm_core.toy_language import sample_metrics, support_size
    from dlm_core.variants.registry import VARIANTS

    out = {}
    for strategy in ("random", "low-confidence"):
        m = sample_metrics(VARIANTS["masked"].sample(model, n, steps, seed=SEED, strategy=strategy).tolist())
        out[strategy] = {"valid": f"{m.validity:.1%}", "different valid sentences": f"{m.coverage} of {support_size()}",
                         "KL valid (bits)": f"{m.kl_valid_bits:.3f}"}
    return out
