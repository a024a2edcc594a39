"""One adapter for real masked (diffusion) language models from Hugging Face `transformers`.

Load by hub id or local path, find the mask token, apply the chat template, choose the
device and dtype, and return logits for a batch. The same `MaskedSampler` and
`Trajectory` then serve real models exactly as they serve the toy ones.

`trust_remote_code` is only ever passed as True when the caller explicitly opts in: it
runs Python code that ships with the checkpoint.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from dlm_core import ASSETS
from dlm_core.sampling.masked_sampler import MaskedSampler, MaskedSamplerConfig
from dlm_core.sampling.sampler import run_trajectory
from dlm_core.trajectory import Trajectory
from dlm_core.variants import hf_cache

EMBEDDED = ASSETS / "embedded-model"
EMBEDDED_NAME = "embedded (Shakespeare, MiniLM warm start)"
SUGGESTED = {
    "dllm-hub/ModernBERT-base-chat-v0.1": "masked diffusion chat model, ~150M, CPU-friendly",
    "dllm-hub/ModernBERT-large-chat-v0.1": "larger ModernBERT diffusion chat model",
    "answerdotai/ModernBERT-base": "plain masked LM (15% masking): a contrast",
    "GSAI-ML/LLaDA-8B-Instruct": "8B, GPU, needs remote code",
    "Dream-org/Dream-v0-Instruct-7B": "7B, GPU, needs remote code",
}
MASK_TOKEN_CANDIDATES = ("[MASK]", "<mask>", "<|mdm_mask|>", "<|mask|>")
REMOTE_CODE_WARNING = (
    "Allowing remote code runs the Python code that ships with the checkpoint on this machine. "
    "Only allow it for checkpoints you trust."
)


class ModelLoadError(RuntimeError):
    """A model that cannot be used, with a message written for the person who asked for it."""


def pick_device(device: str | None = None) -> torch.device:
    """CUDA, then Apple MPS, then CPU, unless `device` overrides."""
    if device:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, dtype: str | None = None) -> torch.dtype:
    """bf16 on CUDA, float32 elsewhere, unless `dtype` overrides."""
    if dtype:
        return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[dtype]
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def _cached(repo_id: str) -> bool:
    """Whether the hub id's config is already in the local Hugging Face cache."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)
    except Exception:  # noqa: BLE001 - an invalid id is simply not cached
        return False


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check, so that a machine without network fails in seconds, not after retries."""
    import socket
    from urllib.parse import urlparse

    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname, url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


NOT_OFFLINE = ("'{name}' is not available offline: it is not in the local Hugging Face cache and there is no "
               "network. Use a local path, the embedded model, or connect and try again.")


def _explain(name: str, err: Exception) -> ModelLoadError:
    """Turn what transformers / huggingface_hub raise into one clear sentence."""
    text = f"{type(err).__name__}: {err}"
    low = text.lower()
    if "trust_remote_code" in low or "remote code" in low:
        return ModelLoadError(
            f"'{name}' needs its own Python code (trust_remote_code). {REMOTE_CODE_WARNING} "
            "Tick 'allow remote code' (or pass --trust-remote-code) only if you trust it."
        )
    if "repositorynotfound" in low or "404" in low or "is not a valid model identifier" in low or (
        "not a local folder" in low and not _offline()
    ):
        if _offline() or "offline" in low or "connection" in low:
            return ModelLoadError(NOT_OFFLINE.format(name=name))
        return ModelLoadError(f"No model called '{name}' was found: not a local folder, not a Hugging Face hub id "
                              "(check the spelling, or it may be private).")
    if any(s in low for s in ("offline", "localentrynotfound", "connection", "couldn't connect", "timed out",
                              "max retries", "name resolution", "network")):
        return ModelLoadError(NOT_OFFLINE.format(name=name))
    if "unrecognized configuration class" in low or "automodelformaskedlm" in low:
        return ModelLoadError(f"'{name}' is not a masked language model (no masked-LM head), so it cannot "
                              "denoise masked tokens. Pick a masked diffusion LM or a BERT-style masked LM.")
    return ModelLoadError(f"Could not load '{name}': {text[:400]}")


TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "vocab.json", "tokenizer.model",
                   "spiece.model", "sentencepiece.bpe.model", "merges.txt")


def restore_embedded(name: str) -> str:
    """How to get the embedded model back, when `name` is it (README, "Reproducing the shipped files")."""
    if Path(name).resolve() != EMBEDDED.resolve():
        return ""
    return (" These are the embedded model's files (assets/embedded-model): restore them with "
            "`git checkout -- assets/embedded-model`, or rebuild them with scripts/train_embedded_model.py "
            "(README, Reproducing the shipped files).")


@dataclass
class LoadOptions:
    trust_remote_code: bool = False
    device: str | None = None
    dtype: str | None = None


class HFMaskedLM:
    """A Hugging Face masked LM behind the sampler's interface: ids (B, N) -> logits (B, N, vocab)."""

    takes_time = False

    def __init__(self, model, tokenizer, name: str, device: torch.device, mask_id: int):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.device = device
        self.mask_id = mask_id
        cfg = model.config
        self.vocab_size = int(getattr(cfg, "vocab_size", None) or len(tokenizer))
        self.max_positions = int(getattr(cfg, "max_position_embeddings", None) or 1 << 30)
        # Dream predicts token i + 1 at position i (it was adapted from an autoregressive model)
        self.shift_logits = getattr(cfg, "model_type", "") == "Dream"
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        # a block-causal attention layout (hf_cache.block_ids; BD3-LM style) instead of the model's own
        # bidirectional one: the block cache is then exact (tests/test_block_cache.py)
        self.block_causal: torch.Tensor | None = None

    def kv_runner(self) -> hf_cache.BertKV | None:
        """Keys and values of one run, for the block cache (None: this model cannot keep them)."""
        return hf_cache.BertKV(self.model, self.block_causal) if hf_cache.supports(self.model) else None

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device)
        if self.block_causal is not None:
            return hf_cache.BertKV(self.model, self.block_causal).forward(x, 0, x.shape[1], store=False)
        out = self.model(input_ids=x, attention_mask=torch.ones_like(x))
        logits = out.logits if hasattr(out, "logits") else out[0]
        if self.shift_logits:
            logits = torch.cat([logits[:, :1], logits[:, :-1]], dim=1)
        return logits[..., : self.vocab_size]

    def token_text(self, i: int) -> str:
        return self.tokenizer.convert_ids_to_tokens(int(i))

    def decode(self, ids, skip_special: bool = True) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=skip_special)

    def special_ids(self) -> set[int]:
        return set(self.tokenizer.all_special_ids)

    def eos_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id, self.tokenizer.pad_token_id}
        return sorted(i for i in ids if i is not None and i != self.mask_id)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def find_mask_id(tokenizer) -> int | None:
    if getattr(tokenizer, "mask_token_id", None) is not None:
        return int(tokenizer.mask_token_id)
    vocab = tokenizer.get_vocab()
    for t in MASK_TOKEN_CANDIDATES:
        if t in vocab:
            return int(vocab[t])
    return None


def load(name_or_path: str | os.PathLike | None = None, options: LoadOptions | None = None) -> HFMaskedLM:
    """Load a masked LM by hub id or local path (None: the embedded default). Raises ModelLoadError."""
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()  # the CLI's stderr is for errors only (one line each)
    opts = options or LoadOptions()
    name = str(name_or_path or EMBEDDED)
    if not name.strip():
        raise ModelLoadError("Enter a Hugging Face model id (e.g. dllm-hub/ModernBERT-base-chat-v0.1) or a local path.")
    trust = bool(opts.trust_remote_code)
    if not Path(name).exists():
        if name.startswith((".", "/", "~")) or name.count("/") > 1:
            raise ModelLoadError(f"No folder at '{name}' (and it is not a Hugging Face hub id).")
        if not _cached(name) and (_offline() or not _hub_reachable()):
            raise ModelLoadError(NOT_OFFLINE.format(name=name))
    folder = Path(name)
    if folder.is_dir():
        missing = [f for f in ("config.json",) if not (folder / f).exists()]
        if missing or not any((folder / f).exists() for f in TOKENIZER_FILES):
            what = "its config.json" if missing else "tokenizer files (" + ", ".join(TOKENIZER_FILES[:4]) + ", ...)"
            raise ModelLoadError(f"The folder '{name}' has no {what}: a model folder needs its config, weights "
                                 f"and tokenizer, as saved by save_pretrained.{restore_embedded(name)}")
    try:
        config = AutoConfig.from_pretrained(name, trust_remote_code=trust)
        tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust)
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear message
        raise ModelLoadError(str(_explain(name, e)) + restore_embedded(name)) from e
    if len(tokenizer) < 16:  # transformers builds an (almost) empty tokenizer rather than failing
        raise ModelLoadError(f"The tokenizer of '{name}' has only {len(tokenizer)} tokens: its files are missing or "
                             f"broken.{restore_embedded(name)}")
    mask_id = find_mask_id(tokenizer)
    if mask_id is None:
        raise ModelLoadError(
            f"'{name}' has no mask token, so it is not a masked (diffusion) language model "
            "(an autoregressive model such as GPT-2 writes left to right and cannot fill masks)."
        )
    device = pick_device(opts.device)
    dtype = pick_dtype(device, opts.dtype)
    try:
        try:
            model = AutoModelForMaskedLM.from_pretrained(name, config=config, dtype=dtype, trust_remote_code=trust)
        except ValueError as e:
            if not trust or "unrecognized configuration class" not in str(e).lower():
                raise
            model = AutoModel.from_pretrained(name, config=config, dtype=dtype, trust_remote_code=True)  # LLaDA
    except Exception as e:  # noqa: BLE001
        err = _explain(name, e)
        raise ModelLoadError(str(err) + restore_embedded(name)) from e
    model = model.to(device).eval()
    shown = EMBEDDED_NAME if Path(name).resolve() == EMBEDDED.resolve() else name
    return HFMaskedLM(model, tokenizer, shown, device, mask_id)


# ----------------------------------------------------------------- generation


@dataclass
class Canvas:
    ids: torch.Tensor  # (1, N) prompt + [MASK] * gen_length (+ trailing special tokens)
    gen_start: int
    gen_length: int


def build_canvas(lm: HFMaskedLM, prompt: str | None, gen_length: int, use_chat_template: bool = True) -> Canvas:
    """[prompt tokens] + gen_length masks (+ the tokenizer's closing special token, e.g. [SEP])."""
    if gen_length < 1:
        raise ValueError("the generation length must be at least 1")
    tok = lm.tokenizer
    prompt = prompt or ""
    if prompt.strip():
        own = tok(prompt, add_special_tokens=False)["input_ids"]
        if lm.mask_id in own:
            raise ValueError(f"the prompt contains the mask token {tok.mask_token}: the model would be asked to "
                             "fill it as part of the prompt; remove it (the generated part is masked already)")
        if all(i in lm.special_ids() and i != tok.unk_token_id for i in own):  # unknown words are still text
            raise ValueError("the prompt is only special tokens: write some text, or choose an unconditional "
                             "generation (an empty prompt)")
    if prompt and use_chat_template and lm.has_chat_template:
        head = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                       tokenize=True)
        head = list(head["input_ids"] if isinstance(head, dict) or hasattr(head, "keys") else head)
        tail: list[int] = []
    else:
        out = tok(prompt, add_special_tokens=True, return_special_tokens_mask=True)
        enc, added = out["input_ids"], out["special_tokens_mask"]
        # split around where the text ends: BERT-style tokenizers wrap it as [CLS] text [SEP]; only the
        # tokens the tokenizer added go after the generation (an [UNK] from the text stays in the prompt)
        n_special_tail = 0
        while n_special_tail < len(enc) and added[len(enc) - 1 - n_special_tail]:
            n_special_tail += 1
        probe = tok("a", add_special_tokens=True, return_special_tokens_mask=True)["special_tokens_mask"]
        n_lead = next((i for i, a in enumerate(probe) if not a), 0)  # what the tokenizer puts before a text
        n_special_tail = min(n_special_tail, len(enc) - n_lead)  # an empty prompt keeps its [CLS] in front
        head, tail = enc[: len(enc) - n_special_tail], enc[len(enc) - n_special_tail:]
    total = len(head) + gen_length + len(tail)
    if total > lm.max_positions:
        raise ValueError(
            f"the prompt ({len(head)} tokens) plus the generation length ({gen_length}) needs {total} positions, "
            f"but {lm.name} has only {lm.max_positions}: shorten the prompt or the generation"
        )
    ids = torch.tensor([head + [lm.mask_id] * gen_length + tail], dtype=torch.long)
    return Canvas(ids=ids, gen_start=len(head), gen_length=gen_length)


def sentence_ids(lm: HFMaskedLM) -> set[int]:
    """The special ids that are not words of the sentence ([CLS], [SEP], padding; not [MASK] or [UNK])."""
    return lm.special_ids() - {lm.mask_id, lm.tokenizer.unk_token_id}


def step_text(lm: HFMaskedLM, tokens: list[int], gen_start: int, gen_length: int) -> str:
    """The generated part of a step decoded as the sentence reads (no [CLS] / [SEP]), masks shown as ▢."""
    hidden = sentence_ids(lm)
    kept = [i for i in tokens[gen_start: gen_start + gen_length] if i not in hidden]
    return lm.decode(kept, skip_special=False).replace(lm.tokenizer.mask_token or "[MASK]", "▢")


def vocab_of(lm: HFMaskedLM, traj: Trajectory) -> dict[str, str]:
    """{str(id): text} of every id a trajectory uses (sequence and predictions)."""
    ids = set(traj.initial) | {i for r in traj.records for i in r.tokens} | {
        i for r in traj.records for row in r.topk_ids for i in row}
    return {str(i): lm.token_text(i) for i in sorted(ids)}


def generate(
    lm: HFMaskedLM,
    prompt: str | None,
    gen_length: int,
    config: MaskedSamplerConfig,
    use_chat_template: bool = True,
    suppress_eos: bool = False,
    on_step=None,
) -> Trajectory:
    """Run the stepwise sampler on a real model; `on_step(record, sampler, text)` streams each step
    (text: the generated part decoded, masks shown as ▢) as soon as it is computed."""
    canvas = build_canvas(lm, prompt, gen_length, use_chat_template)
    if suppress_eos:
        config.suppress_ids = tuple(sorted(set(config.suppress_ids) | set(lm.eos_ids())))
    texts: list[str] = []

    def _on_step(rec, sampler):
        texts.append(step_text(lm, rec.tokens, canvas.gen_start, canvas.gen_length))
        if on_step is not None:
            on_step(rec, sampler, texts[-1])

    sampler = MaskedSampler(lm, config, canvas.ids, gen_start=canvas.gen_start, gen_length=canvas.gen_length)
    t0 = time.perf_counter()
    traj = run_trajectory(sampler, "real", {}, on_step=_on_step)
    traj.settings["seconds"] = round(time.perf_counter() - t0, 3)  # the generation's own time, for the counters
    traj.vocab = vocab_of(lm, traj)
    traj.text_per_step = texts
    traj.settings.update(model=lm.name, prompt=prompt or "", gen_length=gen_length, gen_start=canvas.gen_start,
                         chat_template=bool(use_chat_template and lm.has_chat_template and prompt),
                         special_ids=sorted(sentence_ids(lm)))  # shown greyed in the grid, not in the sentence
    return traj


# ------------------------------------------- generation in a worker process of the job queue (jobs.py)

WORKER_MAX_PARAMS = 500_000_000  # larger (or GPU) models generate in the server's own worker thread
_WORKER_MODEL: dict = {}  # the one model a worker process keeps: {(name, trust_remote_code): HFMaskedLM}


def generates_in_worker_process(lm: HFMaskedLM) -> bool:
    """Whether a generation with `lm` should run in a worker process: a CPU model small enough to load a
    second time there. Its many small operations then no longer hold the server's interpreter lock."""
    return lm.device.type == "cpu" and lm.n_params() <= WORKER_MAX_PARAMS


def generate_in_worker(send, cancelled, name: str, trust_remote_code: bool, prompt: str | None, gen_length: int,
                       config: MaskedSamplerConfig, suppress_eos: bool = False) -> Trajectory:
    """`generate` in a worker process (jobs.WorkerProcess): the model is loaded there on first use (the
    last one is kept), each step's (step, steps, text) streams back through `send`, and a cancel ends
    the generation after the current step."""
    from dlm_core.serving.jobs import Cancelled

    torch.set_num_threads(1)  # a worker takes one core (DLM_WORKERS of them in all)
    key = (name, bool(trust_remote_code))
    if key not in _WORKER_MODEL:
        _WORKER_MODEL.clear()
        _WORKER_MODEL[key] = load(name or None, LoadOptions(trust_remote_code=trust_remote_code))

    def on_step(rec, sampler, text):
        send((rec.step, sampler.config.steps, text))
        if cancelled():
            raise Cancelled("stopped")

    return generate(_WORKER_MODEL[key], prompt, gen_length, config, suppress_eos=suppress_eos, on_step=on_step)
