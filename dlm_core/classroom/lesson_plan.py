"""The lessons, in the article's order (docs/article-map.md says which step teaches which idea). Data only:
what each step says, which live view it shows (a `View`: what to draw, computed by classroom/lessons.py and
drawn by pages/views/lessons.py), what to try, and the question to predict before the answer is revealed.

A step's text is at most three sentences and holds no number that depends on a model: every such number,
and every sentence that compares numbers, is computed at run time (the view's `finding`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SENTENCE = "dog s are our friend s"
SEED = 7  # the seed the lessons show


@dataclass(frozen=True)
class View:
    kind: str  # what to draw (classroom/lessons.VIEWS lists the kinds)
    args: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    text: str  # at most three sentences
    view: View
    try_this: str = ""  # something the page lets a student do now
    question: str | None = None  # a key of questions.QUESTIONS, asked before the view gives the answer away
    shown_before: int = 0  # the steps of the stage's run drawn before the reveal (0: only its start)
    idea: str = ""  # the step's one idea, for the summary (the lesson's first step's is the lesson's)


@dataclass(frozen=True)
class Lesson:
    title: str
    section: str  # the article's section it teaches
    steps: tuple[Step, ...]


def reverse(variant: str, steps: int, seed: int = SEED, **options) -> View:
    return View("reverse", {"variant": variant, "steps": steps, "seed": seed, "options": options})


LESSONS: tuple[Lesson, ...] = (
    Lesson("Left to right, or all at once", "1. What variants of DLMs are there?", (
        Step("An autoregressive model writes one token after another, left to right, each one conditioned on all "
             "before it. This one is trained on the toy language with the same network as the diffusion models.",
             View("autoregressive", {"sentence": SENTENCE}), "Press play and watch the sentence grow from the left.",
             "ar-next", idea="An autoregressive model writes left to right, one token per step."),
        Step("A diffusion language model starts from a canvas of [MASK] tokens and fills positions in any order, "
             "several per step if it likes. Here a masked model writes a sentence in six steps.",
             reverse("masked", 6, strategy="random"), "Scrub back and forth: in what order were the positions filled?",
             idea="A diffusion model fills a whole canvas, in any order."),
    )),
    Lesson("Three kinds of noise", "1. What variants of DLMs are there?", (
        Step("Training corrupts sentences and teaches a model to undo it. Masked noise hides units behind [MASK], "
             "like the white panels of Wheel of Fortune.", View("forward", {"variant": "masked"}),
             "Play the sweep: t goes from 0 (the sentence) to 1 (all masks).",
             idea="Masked, uniform and Gaussian models differ in their noise."),
        Step("Uniform noise replaces a unit with a random unit, like a slot machine: the noise looks like words.",
             View("forward", {"variant": "uniform"}), "Scrub to t = 1: can you still tell which sentence it was?"),
        Step("Gaussian noise blurs each unit's vector in an embedding space; the chips show the nearest unit.",
             View("forward", {"variant": "gaussian"}), "Scrub slowly near t = 0.5: when does each position lose "
                                                        "its unit?"),
    )),
    Lesson("The last step is BERT", "1. Masked-DLM connections with BERT", (
        Step("BERT learned to fill masked words in one pass, in text with a few words masked. The last step of a "
             "masked diffusion model is that same task; filling a whole canvas in one pass is BERT asked for too "
             "much.",
             View("bert_toy"), "Compare the one-step and the six-step rows.", "valid-T1",
             idea="A masked DLM's last step is BERT's task; many steps make it a generator."),
        Step("The embedded real model started from a BERT-style encoder (MiniLM) and was trained on every noise "
             "level, the idea of DiffusionBERT. One pass over a full canvas, against one token per pass:",
             View("bert_real"), "Read both texts: which one is a sentence?"),
    )),
    Lesson("The reverse process and the order of unmasking", "1. Masked-DLM: the absorbing state", (
        Step("Generation runs the reverse process: from noise, step by step, to a sentence. A masked model never "
             "changes a unit it has committed.", reverse("masked", 6, strategy="random"),
             "Follow one position: once its cell is committed it keeps its unit to the end.",
             idea="A masked model never changes a committed unit."),
        Step("The low-confidence sampler commits first the positions where the model is surest. Where it starts "
             "says what the model finds easy.", reverse("masked", 6, strategy="low-confidence"),
             "After the reveal, open the Reverse page and try other seeds: is the easy position always the same?",
             "first-commit"),
    )),
    Lesson("How many steps? Parallel decoding and its errors", "2. Comparing the variants", (
        Step("With one step the model fills all six positions at once, each from its own prediction, "
             "independently. Independent choices rarely agree with each other.", reverse("masked", 1),
             "Read the verdict under the stage.", "one-step-verdict",
             idea="Few steps means parallel decoding, and independent choices that disagree."),
        Step("With more steps, later units see the earlier ones, and agreement comes back. The curve is exact: "
             "it is computed over all 216 sentences, not sampled.", View("validity_curve"),
             "Read off the fewest steps that reach 90 % valid.", "valid-T6"),
        Step("The errors have names: padding in the middle, a verb that does not agree, a wrong plural, or a "
             "tangle that no single fix repairs.", View("errors", {"steps": 1}),
             "Which error does the stage's one-step sample make?", "t1-error"),
    )),
    Lesson("An early mistake cannot be undone", "2. Shortcoming (i): no self-correction", (
        Step("Two units committed in one parallel step may not agree: here “our” was written first while “are your "
             "s” already stood. A masked model can only build around them.", View("propagation_masked"),
             "Read the verdict: which rule does it break?", "propagation",
             idea="A wrong early commit propagates: a masked model cannot take it back."),
        Step("A uniform model given the same units at the same point of its run may change them again.",
             View("propagation_uniform"), "Compare how often each model ends with a valid sentence.", "repair"),
    )),
    Lesson("Changing its mind: self-correction", "2. Shortcoming (i): remasking", (
        Step("A uniform model can change any position at any step: the changed cells are marked.",
             reverse("uniform", 12), "Count the changes: do they get rarer as t goes to 0?", "uniform-change",
             shown_before=6,
             idea="Uniform and Gaussian models can change their mind; ReMDM lets a masked one too."),
        Step("ReMDM lets a masked model take a unit back: re-masked cells are marked.",
             reverse("masked", 12, strategy="ancestral", remask_eta=0.4),
             "Find a unit that was taken back and replaced."),
    )),
    Lesson("Gaussian: rounding and clamping", "2. Why Gaussian DLMs needed tricks", (
        Step("A Gaussian model moves vectors; the unit shown is the nearest one, and it settles late.",
             reverse("gaussian", 24), "Find the step where the sentence stops changing.", "gaussian-settle",
             idea="Continuous vectors must be rounded to tokens; clamping snaps them at every step."),
        Step("Diffusion-LM's clamping snaps the model's estimate to the nearest embedding at every step.",
             View("clamping"), "Compare validity and diversity with and without clamping."),
    )),
    Lesson("Choosing what to unmask: strategies", "2. Remasking strategies (LLaDA)", (
        Step("Random order commits positions at random; low-confidence commits the surest first. Sureness is "
             "not free: the model keeps to sentences it likes.", View("strategies"),
             "Compare validity with the number of different valid sentences.", "coverage",
             idea="Confidence ordering trades diversity for validity."),
    )),
    Lesson("Why masked wins on perplexity but not always in few steps", "2. Comparing the variants", (
        Step("The bound (NELBO) measures how well a model knows the whole language; few-step validity measures "
             "how well its sampler decides many units at once. They need not rank the variants alike.",
             View("bound_vs_steps"), "Find the variant with the lowest bound, then the one most valid at 3 steps.",
             "lowest-bound", idea="A tight bound and good few-step samples are different things."),
    )),
    Lesson("Guidance, exactly", "2. Shortcoming (ii): classifier-free guidance", (
        Step("Unsupervised guidance asks the model twice, with and without the prompt, and pushes the prediction "
             "away from the unconditional one. On the toy language the target it aims at is known exactly.",
             View("guidance_toy"), "Read the distance for each w.", "guidance-valid",
             idea="Guidance tilts each step towards the prompt; a strong tilt breaks sentences."),
        Step("The same guidance on a real model: the prompt is masked for the unconditional pass.",
             View("guidance_real"), "Open the Real page and move its guidance slider."),
    )),
    Lesson("How a DLM is trained", "3. What is the training procedure for a DLM?", (
        Step("Each training sentence gets its own noise level t, and the schedule decides how t masks. The "
             "loss is a cross-entropy on the masked positions, weighted by 1/t (MD4, MDLM, RADD).",
             View("lab", {"preset": "weighting"}), "Open the lab on this preset and run it: which weighting gives a "
                                                   "bound?",
             idea="Training masks each example at its own noise level and scores the masked positions."),
        Step("A masked denoiser does not need to be told t: the share of masks already says it.",
             View("lab", {"preset": "time"}), "Run it in the lab: does the time input change the bound?"),
        Step("The schedule sets how fast masks appear; fewer early commitments make fewer conflicts.",
             View("lab", {"preset": "schedule"}), "Run it in the lab and compare the schedules' curves."),
        Step("Instruction tuning masks only the response, never the prompt, so the model learns to answer.",
             View("lab", {"preset": "instruction"}), "Run it in the lab: what can each model do afterwards?"),
        Step("A diffusion model needs many passes over its data: each pass masks the same sentence differently.",
             View("lab", {"preset": "epochs"}), "Run it in the lab: when does the small set stop helping?"),
    )),
    Lesson("Training and the entropy floor", "3. Training objective", (
        Step("Training shows the model corrupted sentences and asks for the originals. The loss is a bound "
             "(NELBO) that can never go below the language's entropy H.", View("train"),
             "Press Train and watch the curve fall towards H.", "nelbo-gap",
             idea="The NELBO is a bound: it never goes below the entropy H."),
    )),
    Lesson("A mid-flight prefill", "4. Wen et al. 2025: jailbreaking by a mid-flight prefill", (
        Step("A diffusion model fills the canvas around whatever is already there. Prefill units in the middle "
             "and they decide what the model writes before them.", View("prefill_toy"),
             "Compare the opening's probability before and after the prefill.", "prefill",
             idea="Units prefilled mid-canvas steer what comes before them."),
        Step("On a real model a phrase written into the middle of the canvas steers the rest, and the length of "
             "the canvas changes the outcome too: the mechanism of the jailbreak, with harmless text.",
             View("prefill_real"), "Read the two canvases: what changed with the length?"),
    )),
    Lesson("Diffusion and repeated data", "4. Prabhudesai et al. 2025: data-constrained settings", (
        Step("Train an autoregressive and a diffusion model of the same size on the same few sentences, again "
             "and again. Which one keeps improving?", View("data_study"),
             "Find the epoch where each family's held-out loss is lowest.", "repeated-data",
             idea="Repeated data: how long each family keeps learning from the same sentences."),
    )),
    Lesson("A real model", "Beyond the toy: a real masked DLM", (
        Step("Semi-autoregressive blocks: the canvas is filled block by block, left to right, each block in "
             "several steps (LLaDA).", View("real_blocks"), "Find the block boundaries on the grid.",
             idea="On real text, blocks and confidence decide the order; a threshold can save passes."),
        Step("Low-confidence against random order on the same prompt.", View("real_strategies"),
             "Which order reads more like a sentence?"),
        Step("Threshold decoding commits every token it is sure enough of in one pass; a fixed count always takes "
             "as many passes as steps.", View("real_threshold"), "Count the forward passes.", "real-threshold"),
    )),
    Lesson("An honest comparison", "2. Apple-to-apple", (
        Step("The three variants on one footing: the same steps, the same samples, the exact H as the floor. "
             "Few steps is where they differ most.", View("compare"),
             "Which variant is most valid at 3 steps? Open the Compare page for 100.", "fewest-steps",
             idea="On one footing, the variants trade bound, steps and diversity."),
    )),
    Lesson("Summary", "All sections", (
        Step("Each lesson in one line; press a lesson's name to go back to it.", View("summary"),
             "Pick the lesson you would show first to a friend."),
    )),
)
