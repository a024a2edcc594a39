"""The glossary's data (glossary.py finds the terms a text uses): each term's plain definition
(`GLOSSARY`), how the pages write it (`FORMS`), and the words that are a term only in some contexts
(`CONTEXT`, `GIVES_WAY`). Only data: this module may grow past the usual length as terms are added."""

from __future__ import annotations

GLOSSARY: dict[str, str] = {
    # ------------------------------------------------------------------ the big picture
    "DLM (diffusion language model)":
        "A language model that writes by starting from noise over the whole text and cleaning it up in a few "
        "steps, changing many positions at once. An autoregressive model instead writes one token after another.",
    "autoregressive model":
        "A language model that writes one token at a time, left to right, and never goes back to change one "
        "(most chatbots work like this).",
    "token / unit":
        "One piece of text that a model reads or writes. In the toy language a unit is a short word such as "
        "'dog' or the plural ending 's'; real models use tokens, which are words or pieces of words.",
    "toy language":
        "The small made-up language of the toy pages: 13 units and 216 sentences of exactly six units. It is "
        "small enough for the tool to check every sample and compute every score exactly.",
    "variant":
        "One of the kinds of model this tool builds: masked, uniform or Gaussian diffusion, which differ in the "
        "kind of noise that corrupts the text, and the autoregressive twin they are measured against.",
    "causal mask":
        "What makes a transformer autoregressive: each position may only look at the positions before it, so its "
        "prediction never sees what comes after. The autoregressive twin is the masked model's network with one.",
    "larger toy language":
        "A second made-up language for the studies that need many sentences: the toy language's clauses, two more "
        "pronouns and an optional second clause after 'and', padded to 12 units (61,809 sentences).",
    "masked (absorbing) diffusion":
        "Diffusion whose noise hides units behind [MASK]; once a unit is revealed it stays, which is what "
        "'absorbing' means. MDLM, LLaDA and Dream are masked models.",
    "uniform diffusion":
        "Diffusion whose noise replaces units by random units, so every position always shows some unit and "
        "may still change at any later step.",
    "Gaussian diffusion":
        "Diffusion in embedding space: units become vectors, Gaussian (bell-curve) noise blurs them, and at "
        "the end each vector is rounded to its nearest unit.",
    "noise":
        "Random corruption of the text. Diffusion models learn to remove it; pure noise means nothing of the "
        "original text is left.",
    "forward process":
        "The fixed recipe that corrupts a sentence little by little, from clean text to pure noise. It needs no "
        "learning: the model learns to undo it.",
    "reverse process":
        "Generation: starting from pure noise, the model removes a little noise at every step until a clean "
        "text is left.",
    "denoiser":
        "The neural network inside a diffusion model. Given a noisy sequence, it guesses which clean unit "
        "belongs at each position.",
    "t (noise level)":
        "How far the forward process has gone: 0 is the clean sentence, 1 is pure noise, and values in between "
        "are partly corrupted.",
    "steps T":
        "How many reverse steps a sampler takes to go from noise to text. Few steps means many units are "
        "decided at once: faster, but more mistakes.",
    "schedule α_t":
        "How fast the noise grows with t. α_t is the share of the clean signal still left at time t, from 1 at "
        "the start to 0 at the end (linear and cosine are two such curves).",
    "z_t (noisy sequence)":
        "The noisy version of the sentence at noise level t. z_s is the same sequence one reverse step later, "
        "a little cleaner.",
    "one-hot":
        "A list of probabilities with all of its weight on a single unit: the way to write 'certainly this "
        "unit' as numbers.",
    "probability distribution":
        "A list of how likely each possible unit (or sentence) is; the numbers lie between 0 and 1 and add "
        "up to 1.",
    "[MASK]":
        "A special blank token that hides a position. Masked diffusion starts from all [MASK] and replaces them "
        "by units; [MASK] is never a word of the finished text.",
    "[PAD]":
        "The padding unit: a sentence shorter than six units is filled up with [PAD] at the end, so that every "
        "sentence has exactly six positions.",
    "canvas":
        "The sequence being written. An empty canvas has a [MASK] at every position that is still to be "
        "generated.",
    "embedding":
        "A list of numbers (a vector) that stands for a unit, so that units become points in space. E is the "
        "table of all the units' embeddings.",
    "vector":
        "A list of numbers, which can be drawn as a point (or an arrow) in space.",
    "2-D projection":
        "A flat picture of points that really live in many dimensions, drawn along the two directions in which "
        "they spread out most (the principal axes).",
    # ------------------------------------------------------------------ scores
    "NELBO":
        "The negative evidence lower bound: the training loss of a diffusion model, in bits per unit. Lower is "
        "better, and no model can honestly get below the entropy H.",
    "entropy H":
        "How unpredictable the toy language really is, in bits per unit, computed exactly from its rules. It is "
        "the floor that no model can beat.",
    "bits per unit":
        "The unit of surprise: one bit is one yes-or-no question. Bits per unit is the average number of such "
        "questions needed per unit of text, so fewer is better.",
    "NELBO − H":
        "How far a model's NELBO is above the entropy floor, in bits per unit. 0 would be a perfect model; "
        "smaller is better.",
    "validity":
        "The fraction of a model's samples that are real sentences of the toy language. 1 means every sample "
        "is a correct sentence.",
    "error reasons":
        "Why a sample is not a sentence, the first that applies: padding ([PAD] followed by a real unit), "
        "agreement (swapping 'is' and 'are' would fix it), predicate number (adding or removing a plural 's' "
        "would fix it), or other (none of these fixes makes it valid).",
    "coverage":
        "The fraction of the 216 sentences of the language that turn up at least once among the samples. Low "
        "coverage means the model keeps writing the same few sentences (little diversity).",
    "support":
        "All the sentences the language can produce (216 for the toy language). A sentence outside the "
        "support is invalid.",
    "KL (divergence)":
        "The Kullback-Leibler divergence, in bits: how different two probability distributions are. 0 means "
        "identical; bigger means more different.",
    "KL valid":
        "The KL between how often each valid sentence appears among the samples and how often the language "
        "really produces it. It ignores invalid samples and asks whether the valid ones come in the right mix.",
    "forward KL":
        "The KL from the language to the model, computed exactly: large when the model rarely writes sentences "
        "the language often produces. Only the masked variant allows this exact number.",
    "plug-in KL":
        "The KL computed straight from sample counts. Even a perfect model gets a small positive value from a "
        "finite number of samples, so differences below it mean nothing.",
    "TV (total variation)":
        "The total variation distance: the biggest difference in probability that the samples and the language "
        "give to any set of sentences. 0 means the same distribution, 1 means nothing in common.",
    "standard error":
        "How much a number measured from random samples would wobble if the measurement were repeated; it is "
        "written after ± . An exact number has none.",
    "p, p_model":
        "The letter p stands for how often the toy language really produces each sentence; p_model for how "
        "often a model produces it.",
    "empirical distribution":
        "How often each sentence appears among the samples, as fractions: the distribution read off the "
        "samples themselves.",
    "sample":
        "One output drawn at random from a model (or from the language). Measuring many samples shows how a "
        "model behaves.",
    "Monte Carlo":
        "Estimating a number by averaging over random draws instead of computing it exactly; the result comes "
        "with a standard error.",
    "unbiased estimate":
        "A number computed from random draws that is right on average: repeated many times, its mean is the "
        "true value.",
    # ------------------------------------------------------------------ inside the model
    "SUBS":
        "A rule of masked diffusion models: the denoiser never predicts [MASK], and a unit that is already "
        "revealed is copied through unchanged.",
    "p_θ(x | z_t)":
        "The denoiser's guess: for each position, how likely each clean unit is, given the noisy sequence z_t. "
        "θ stands for the model's parameters.",
    "the s = 0 posterior":
        "The model's belief about which clean unit belongs at a position at the very end of generation (time "
        "0), taking the current noisy unit into account. Posterior means a belief updated by evidence.",
    "x̂ (x_hat)":
        "The Gaussian model's current guess of the clean sentence: a blend of the units' embeddings, weighted "
        "by how likely the denoiser thinks each unit is.",
    "log-SNR γ":
        "The Gaussian variant's noise level: the logarithm of the signal-to-noise ratio, falling as t grows (γ "
        "is minus it, so a larger γ means more noise).",
    "logits":
        "The raw scores a network gives each possible token before they are turned into probabilities; a "
        "higher logit means more likely.",
    "softmax":
        "The function that turns a network's raw scores (logits) into probabilities between 0 and 1 that add "
        "up to 1.",
    "top-k":
        "The k most likely tokens the model predicts at a position (here the top 10), with their "
        "probabilities.",
    "parameters":
        "The numbers inside a neural network that training adjusts. Model size is counted in parameters (M "
        "means millions).",
    # ------------------------------------------------------------------ samplers
    "sampler":
        "The procedure that runs the reverse process: step by step it decides which units to write and when.",
    "strategy":
        "The rule a masked sampler uses to choose which hidden positions to reveal at each step: ancestral, "
        "random, low-confidence, margin or entropy.",
    "ancestral":
        "The textbook reverse step: each step draws the next, slightly cleaner sequence at random from the "
        "model's prediction. For masked models each hidden position is revealed with a chance set by the "
        "schedule, so the number revealed per step varies.",
    "low-confidence":
        "A strategy that reveals first the positions where the model is surest of its choice (LLaDA's default: "
        "the low-confidence positions stay masked for later).",
    "margin":
        "A strategy that reveals first the positions where the model's first choice beats its second choice by "
        "the widest margin.",
    "entropy (strategy)":
        "A strategy that reveals first the positions where the model's prediction is least spread out (lowest "
        "entropy), that is, where it is most certain.",
    "random (strategy)":
        "A strategy that reveals a fixed number of positions per step in a random order, ignoring the model's "
        "confidence.",
    "fixed-count sampler":
        "LLaDA's sampler: it reveals a set number of positions at every step and lets the strategy choose which "
        "ones.",
    "confidence threshold":
        "A strategy (Fast-dLLM) that commits at each step every masked position whose confidence reaches the "
        "threshold, and at least the most confident one, so easy text takes fewer steps.",
    "forward pass":
        "One run of the network over the whole sequence, giving its predictions at every position. A sampler's "
        "cost is mostly how many forward passes it makes.",
    "semi-autoregressive block":
        "The text is cut into blocks that are filled one after another from left to right, with diffusion "
        "inside each block (as in LLaDA). The block length is how many positions a block has.",
    "temperature":
        "How adventurous the sampling is: 0 always takes the most likely unit, 1 follows the model's "
        "probabilities, and higher values pick unlikely units more often.",
    "ReMDM remasking η":
        "An add-on to the ancestral sampler (ReMDM) that hides some already revealed units again, with a "
        "chance capped by η, so that early mistakes can still be fixed.",
    "self-correction":
        "Changing a unit that was already written at an earlier step. Uniform and Gaussian models can do it at "
        "every step; plain masked models never do.",
    "commit":
        "To fix the unit at a position: in masked diffusion a committed (revealed) unit never changes again, "
        "unless remasking is switched on.",
    "Kendall's τ":
        "A number from −1 to +1 that says how close an order is to left to right: +1 when every position is "
        "committed before the ones to its right, −1 for right to left, 0 when there is no tendency.",
    "word class":
        "The kind of word a token is in the unmasking-order study: punctuation, a function word (the, and, of), "
        "a content word (king, love), or a subword piece that continues the word before it.",
    "confidence (score)":
        "How sure the model is about the unit it picked at a position: the number a strategy uses to decide "
        "which positions to commit first.",
    "clamping":
        "A trick from Diffusion-LM: at every step the model's guess is snapped to the nearest unit's embedding. "
        "Valid sentences become a little more likely, but the samples less varied.",
    "guidance (CFG)":
        "Classifier-free guidance: the model runs with and without the prompt, and the difference between the "
        "two is amplified by the scale w, so the text follows the prompt more closely.",
    "prompt":
        "Text given to the model before it writes. Its positions are fixed (pinned) and the model fills in the "
        "rest.",
    "pin":
        "A position you hold at a unit of your choice while the model writes the rest, like a one-word prompt "
        "placed anywhere in the sentence.",
    "branch":
        "A second run that starts from the same first steps as the original, then goes on differently after "
        "you changed something (a pin, a re-mask) or chose another seed.",
    "infill":
        "Filling in the missing positions of a sentence when some positions are already given, anywhere in it; "
        "diffusion models can do this because they do not write left to right.",
    "unconditional":
        "Generation without any prompt: the model writes from an empty canvas.",
    "end-of-sequence token":
        "A special token that marks where a text ends. Suppressing it makes the model fill every position with "
        "words.",
    "chat template":
        "The wrapping text a chat model expects around a user's message; it is added to the prompt "
        "automatically.",
    # ------------------------------------------------------------------ training
    "loss":
        "The number training tries to make smaller: how badly the model undoes the corruption of a batch of "
        "sentences.",
    "training step":
        "One update of the model: it looks at a small batch of corrupted sentences and nudges its parameters to "
        "undo the corruption a little better.",
    "loss weighting":
        "How much each masked unit's error counts in the loss. Weighting by one over the noise level makes the "
        "loss a bound on the likelihood (the NELBO); without it the model learns the same predictions, but its "
        "loss is no bound.",
    "cross-entropy":
        "The usual training loss of a language model: minus the log of the probability the model gave to the "
        "right unit, averaged. Its average over the language can never go below the entropy.",
    "time input":
        "Giving the denoiser the noise level t as an extra input. A masked model does not need it: which units are "
        "masked already says all that t would (RADD).",
    "pre-training":
        "Training on plain text: any unit may be masked, so the model learns to write a whole sentence from nothing.",
    "instruction tuning":
        "Training on prompt and answer pairs where only the answer is ever masked, never the prompt: the model "
        "learns to answer, not to write from nothing (LLaDA's supervised fine-tuning).",
    "epoch":
        "One pass over the whole training set. Training for many epochs shows the model the same sentences again "
        "and again (a diffusion model with new masks each time).",
    "training set":
        "The sentences a model learns from. Here a fixed set of sentences drawn from the toy language, or fresh "
        "sentences at every step.",
    "learn by heart (overfitting)":
        "When a model gets better at its few training sentences but worse at everything else: its loss on new "
        "sentences rises again after some epochs.",
    "held-out loss":
        "The loss on sentences the model did not train on. Here it is computed against the whole language, so it "
        "is the loss on endless fresh sentences.",
    "data-constrained":
        "A setting with little unique data, so a model must train for many epochs over the same sentences "
        "(Prabhudesai and colleagues, 2025: there, diffusion beats autoregression).",
    "learning rate":
        "How big each training update is. Too small learns slowly; too large makes training unstable.",
    "width (model size)":
        "The size of the toy denoiser's internal vectors. Wider models can learn more, but train more slowly.",
    "low-discrepancy sampling":
        "Drawing the noise levels t of a batch evenly spread out instead of fully at random, which makes the "
        "training loss less noisy.",
    "checkpoint":
        "A saved, trained model that can be loaded again. The shipped checkpoint is the toy model that comes "
        "with this tool.",
    "seed":
        "The starting number of the random draws. The same seed and settings always give the same result, so "
        "a link reproduces exactly what you saw.",
    # ------------------------------------------------------------------ the app
    "stage (player)":
        "The animated player at the top of a page: it plays the steps one after another in your browser, or "
        "lets you scrub through them.",
    "scrub":
        "To drag the player's slider back and forth to move through the steps by hand.",
    "token × step grid":
        "The table under the player: one row per position, one column per step, each cell coloured by what "
        "happened to that position at that step.",
    "trajectory":
        "The record of one generation: what every position showed after every step, so that it can be "
        "replayed, scrubbed or exported.",
    "JSON":
        "A plain-text file format for data. A trajectory saved as JSON opens again on this page.",
    "HTML":
        "The format of web pages. The offline player is one HTML file that plays in any browser without this "
        "app.",
    "viridis":
        "The colour scale used for every probability and confidence, from dark purple (low) to yellow (high), "
        "readable by colour-blind viewers too.",
    "embedded model":
        "The small masked diffusion model that ships with this tool and runs offline. It was trained on "
        "Shakespeare, starting (a warm start) from MiniLM, a small pretrained text model.",
    "Hugging Face hub":
        "A public website of shared models; a hub id such as org/model names one of them.",
    "remote code":
        "Python code that ships with some hub models and runs on this machine when the model loads. Only allow "
        "it for models you trust.",
    "CPU":
        "The computer's main processor. A GPU (graphics card) runs neural networks much faster.",
    # ------------------------------------------------------------------ models and papers
    "MDLM":
        "Masked Diffusion Language Model (Sahoo and colleagues, 2024): a simple, strong recipe for training "
        "masked diffusion models, whose loss and ancestral sampler this tool uses.",
    "MD4":
        "A masked diffusion model (Shi and colleagues, 2024) that, like MDLM, trains with a simple weighted "
        "masking loss.",
    "RADD":
        "A masked diffusion model (Ou and colleagues, 2024) showing that the denoiser does not need to be told "
        "t: the number of masks already says it.",
    "LLaDA":
        "A large masked diffusion language model (8 billion parameters; Nie and colleagues, 2025) that can chat "
        "like an autoregressive one. Its fixed-count sampler with blocks is the one used here.",
    "Dream":
        "A large masked diffusion language model (Ye and colleagues, 2025) started from an autoregressive "
        "model's weights; the margin and entropy strategies come from it.",
    "UDLM":
        "Uniform diffusion language model (Schiff and colleagues, 2025): uniform noise, where any position may "
        "change at any step.",
    "D3PM":
        "Discrete diffusion (Austin and colleagues, 2021): the first general recipe for diffusion on tokens, "
        "with masked and uniform noise as special cases.",
    "CDCD":
        "Continuous diffusion for categorical data (Dieleman and colleagues, 2023): Gaussian diffusion on "
        "token embeddings.",
    "Plaid":
        "A Gaussian diffusion language model (Gulrajani and Hashimoto, 2023) trained on its likelihood bound, "
        "like this tool's Gaussian variant.",
    "VDM":
        "Variational diffusion models (Kingma and colleagues, 2021): the Gaussian diffusion recipe with a "
        "log-SNR schedule, whose ancestral step the Gaussian variant uses.",
    "Diffusion-LM":
        "One of the first Gaussian diffusion language models (Li and colleagues, 2022); it rounds noisy "
        "embeddings to words and introduced clamping.",
}

# How the pages write a term, when that is not (only) the term itself. A term not listed here is
# written as itself. Plurals ("units", "DLMs") are found without listing them.
FORMS: dict[str, tuple[str, ...]] = {
    "DLM (diffusion language model)": ("DLM", "diffusion language model", "diffusion LM", "diffusion model"),
    "autoregressive model": ("autoregressive",),
    "causal mask": ("causal mask", "causal"),
    "larger toy language": ("larger toy language", "larger language"),
    "loss weighting": ("weighting", "unweighted"),
    "cross-entropy": ("cross-entropy",),
    "time input": ("time input",),
    "pre-training": ("pre-training", "pre-trained"),
    "instruction tuning": ("instruction tuning", "instruction"),
    "epoch": ("epoch",),
    "training set": ("training set", "unique sentences"),
    "learn by heart (overfitting)": ("by heart", "overfit", "overfits", "overfitting"),
    "held-out loss": ("held-out loss",),
    "data-constrained": ("data-constrained",),
    "token / unit": ("token", "unit"),
    "masked (absorbing) diffusion": ("masked", "absorbing"),
    "uniform diffusion": ("uniform",),
    "Gaussian diffusion": ("gaussian",),
    "noise": ("noise", "noisy"),
    "forward process": ("forward process", "corruption", "corrupt", "corrupted", "corrupts", "q(z_t"),
    "reverse process": ("reverse process", "reverse step", "denoising"),
    "t (noise level)": ("t", "noise level"),
    "steps T": ("T", "steps T"),
    "schedule α_t": ("schedule", "α_t", "α_s", "α", "α²", "\\alpha_t", "\\alpha_s", "\\alpha", "linear", "cosine"),
    "z_t (noisy sequence)": ("z_t", "z_s"),
    "one-hot": ("one-hot", "onehot"),
    "probability distribution": ("distribution",),
    "[MASK]": ("[MASK]", "mask", "mask token", "unmasking", "unmasked"),
    "embedding": ("embedding", "E"),
    "2-D projection": ("2-D projection", "projection", "principal axes"),
    "NELBO": ("NELBO", "ELBO", "bound"),
    "entropy H": ("entropy", "H"),
    "bits per unit": ("bits per unit", "bits/unit", "bit"),
    "NELBO − H": ("NELBO − H", "NELBO - H"),
    "validity": ("validity", "valid", "invalid"),
    "error reasons": ("error reason", "padding", "agreement", "predicate number", "predicate_number", "other error"),
    "coverage": ("coverage", "diversity", "diverse"),
    "KL (divergence)": ("KL",),
    "forward KL": ("forward KL", "Forward KL"),
    "TV (total variation)": ("TV", "total variation"),
    "standard error": ("standard error", "±", "stderr"),
    "p, p_model": ("p", "p_model"),
    "empirical distribution": ("empirical",),
    "sample": ("sample", "sampled", "sampling"),
    "Monte Carlo": ("Monte Carlo", "Monte-Carlo"),
    "unbiased estimate": ("unbiased",),
    "p_θ(x | z_t)": ("p_θ(x | z_t)", "p_θ", "p_\\theta"),
    "the s = 0 posterior": ("s = 0 posterior", "posterior"),
    "x̂ (x_hat)": ("x̂", "x_hat", "\\hat x"),
    "log-SNR γ": ("log-SNR", "γ", "\\gamma", "\\gamma_s", "\\gamma_t"),
    "logits": ("logit",),
    "top-k": ("top-k", "top 10"),
    "parameters": ("parameter",),
    "strategy": ("strategy", "strategies"),
    "entropy (strategy)": ("entropy",),
    "random (strategy)": ("random",),
    "fixed-count sampler": ("fixed-count",),
    "confidence threshold": ("confidence threshold", "threshold"),
    "forward pass": ("forward pass", "forward passes"),
    "semi-autoregressive block": ("semi-autoregressive", "block"),
    "ReMDM remasking η": ("ReMDM", "remasking", "re-masked", "remasked", "η", "\\eta"),
    "commit": ("commit", "committed", "committing", "reveal", "revealed"),
    "Kendall's τ": ("Kendall's τ", "Kendall"),
    "confidence (score)": ("confidence", "score"),
    "clamping": ("clamp", "clamping"),
    "guidance (CFG)": ("guidance", "CFG"),
    "prompt": ("prompt",),
    "pin": ("pin", "pins", "pinned", "pinning"),
    "branch": ("branch", "branches"),
    "infill": ("infill", "infilling", "fill in", "fills in"),
    "end-of-sequence token": ("end-of-sequence", "EOS"),
    "low-discrepancy sampling": ("low-discrepancy",),
    "width (model size)": ("width",),
    "checkpoint": ("checkpoint", "shipped"),
    "stage (player)": ("stage",),
    "scrub": ("scrub", "scrubbing"),
    "token × step grid": ("grid",),
    "embedded model": ("embedded", "MiniLM", "warm start"),
    "Hugging Face hub": ("hub", "Hugging Face"),
    "CPU": ("CPU", "cpu", "GPU"),
}

# Words that are a term only where the text also speaks of strategies ("random units" is no strategy) ...
_STRATEGIES = r"\bstrateg(y|ies)\b"
CONTEXT: dict[str, str] = {"entropy (strategy)": _STRATEGIES, "random (strategy)": _STRATEGIES}
# ... and forms that give way there: a bare "entropy" is then the strategy ("entropy H" still finds H).
GIVES_WAY: dict[str, tuple[str, str]] = {"entropy H": ("entropy", _STRATEGIES)}
