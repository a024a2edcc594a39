"""The embedded model's measurements for its model card (scripts/train_embedded_model.py --finalize).

- Held-out NELBO of the new model and of the previous one on the same held-out windows, with the
  training script's estimator (16 stratified t per window), in bits per token and per character of
  the cleaned text (so that models with other tokenizers could be compared fairly).
- Repetition at temperature 0: over 20 prompts from the held-out text, 64 generated tokens at the
  Real page's other defaults (32 steps, one block, low-confidence), the share of distinct word
  bigrams within each generation and its longest repeated word n-gram.
- Unedited samples: 5 prompts at the Real page's defaults (temperature 1), and the first 5 at temperature 0.
"""

from __future__ import annotations

import hashlib
import json
import math
import re

import torch

from dlm_core.sampling.masked_sampler import MaskedSamplerConfig
from dlm_core.variants import hf_adapter

GEN_LENGTH, STEPS, N_PROMPTS, PROMPT_WORDS = 64, 32, 20, 8


def words(text: str) -> list[str]:
    """The words of a generation (letters, digits and apostrophes; punctuation marks are not words)."""
    return re.findall(r"[a-z0-9']+", text.lower())


def distinct_bigrams(ws: list[str]) -> float:
    """Share of distinct word bigrams among all of a generation's bigrams (1.0: no bigram repeats)."""
    pairs = list(zip(ws, ws[1:]))
    return len(set(pairs)) / len(pairs) if pairs else 1.0


def longest_repeat(ws: list[str]) -> int:
    """The length of the longest word n-gram that occurs at least twice in a generation."""
    best = 0
    for n in range(1, len(ws)):
        grams = [tuple(ws[i:i + n]) for i in range(len(ws) - n + 1)]
        if len(set(grams)) == len(grams):
            break
        best = n
    return best


def prompts_from(text: str, n: int = N_PROMPTS) -> list[str]:
    """n prompts evenly spread over the held-out text: the first PROMPT_WORDS words of a sentence."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= PROMPT_WORDS + 4]
    step = len(sentences) / n
    return [" ".join(sentences[int(i * step)].split()[:PROMPT_WORDS]) for i in range(n)]


def generate_text(lm, prompt: str, temperature: float, seed: int = 0) -> str:
    cfg = MaskedSamplerConfig(steps=STEPS, strategy="low-confidence", temperature=temperature, block_length=GEN_LENGTH,
                              seed=seed, top_k=1)
    traj = hf_adapter.generate(lm, prompt, GEN_LENGTH, cfg)
    hidden = hf_adapter.sentence_ids(lm)
    return lm.decode([i for i in traj.final[traj.gen_start:traj.gen_start + GEN_LENGTH] if i not in hidden])


def repetition(lm, prompts: list[str]) -> dict:
    texts = [generate_text(lm, p, 0.0) for p in prompts]
    ws = [words(t) for t in texts]
    return {"distinct_bigrams": sum(map(distinct_bigrams, ws)) / len(ws),
            "distinct_bigrams_min": min(map(distinct_bigrams, ws)),
            "longest_repeat_mean": sum(map(longest_repeat, ws)) / len(ws),
            "longest_repeat_max": max(map(longest_repeat, ws)), "texts": texts}


def nelbo(model, held, held_chars, mask_id, held_out_bits, n_t: int) -> dict:
    """Held-out NELBO per token and per character (the total over the windows), with standard errors."""
    per_token = held_out_bits(model, held, mask_id, n_t=n_t, seed=1)  # bits per text token of each window
    bits = per_token * (held.shape[1] - 2)  # bits of each window
    per_char = bits / held_chars.double()
    n = len(per_token)
    return {"bits_per_token": float(per_token.mean()), "bits_per_token_se": float(per_token.std() / math.sqrt(n)),
            "bits_per_char": float(bits.sum() / held_chars.sum()),
            "bits_per_char_se": float(per_char.std() / math.sqrt(n))}


def finalize(a, plays, held_out_plays, held, held_chars, uni, mask_id, previous, write_card, held_out_bits,
             out) -> None:
    """Measure the trained model (in `out`) and the previous one, write heldout.json and the model card."""
    from transformers import BertForMaskedLM

    prompts = prompts_from(" ".join(plays[name] for name in held_out_plays))
    if not a.measure_previous:  # what the card is measured on (the order study's prompts come from it too)
        (out / "heldout.json").write_text(json.dumps({
            "what": "held-out windows ([CLS] + text + [SEP] token ids) the model card's NELBO is measured on, with "
                    "each window's length in characters of the cleaned text, and the prompts of its repetition "
                    "measure", "plays": list(held_out_plays), "unigram_bits_per_token": uni,
            "chars": held_chars.tolist(), "ids": held.tolist(), "prompts": prompts}) + "\n")

    def measure(path) -> dict:
        model = BertForMaskedLM.from_pretrained(path, dtype=torch.float32).eval()
        out = nelbo(model, held, held_chars, mask_id, held_out_bits, a.final_n_t)
        out.update(repetition(hf_adapter.load(path), prompts))
        print(path.name, {k: v for k, v in out.items() if k != "texts"}, flush=True)
        return out

    # the previous model's numbers do not change while this one trains: measured once (--measure-previous
    # runs it beside the training), kept in the cache with what they were measured on
    key = hashlib.sha1(json.dumps([held.tolist(), prompts, a.final_n_t]).encode()).hexdigest()
    kept = previous.parent / "previous_measures.json"
    if kept.exists() and json.loads(kept.read_text()).get("key") == key:
        old = json.loads(kept.read_text())["measures"]
    else:
        old = measure(previous)
        kept.write_text(json.dumps({"key": key, "measures": old}))
    if a.measure_previous:
        return
    stats = json.loads((out / "training_stats.json").read_text())
    result = {"new": measure(out), "previous": old}
    lm = hf_adapter.load(out)
    samples = {"default": [(p, generate_text(lm, p, 1.0, seed=i)) for i, p in enumerate(prompts[:5])],
               "greedy": [(p, t) for p, t in zip(prompts[:5], result["new"]["texts"][:5])]}
    stats.update(final=True, eval_n_t=a.final_n_t, unigram_bits=uni, nelbo_bits=result["new"]["bits_per_token"],
                 nelbo_stderr=result["new"]["bits_per_token_se"], measures=result, prompts=prompts, samples=samples)
    write_card(stats)
