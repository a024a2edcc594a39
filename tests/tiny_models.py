"""Tiny masked LMs built with transformers and saved locally, for the adapter tests."""

from pathlib import Path

import torch

WORDS = ["the", "cat", "dog", "sat", "on", "mat", "a", "is", "and", "ran", "hello", "world", "to", "red", "blue"]


def _wordlevel_tokenizer(specials: list[str], bert_style: bool, words=WORDS):
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(specials + list(words))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]" if "[UNK]" in vocab else specials[0]))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    kw = {}
    if bert_style:
        tk.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
        )
        kw = dict(cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]")
    else:
        kw = dict(eos_token="<eos>", unk_token="<unk>")
    return PreTrainedTokenizerFast(tokenizer_object=tk, **kw)


def make_bert(path: Path, seed: int = 0, max_positions: int = 64, words=WORDS, favour=(), init_range=0.02) -> Path:
    """A 2-layer BERT; `favour`: words whose output bias is raised so that it writes them (e.g. HTML);
    a large `init_range` makes its predictions depend strongly on the context."""
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = _wordlevel_tokenizer(specials, bert_style=True, words=words)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=max_positions, initializer_range=init_range)
    model = BertForMaskedLM(cfg)
    with torch.no_grad():
        for w in favour:
            model.cls.predictions.bias[len(specials) + list(words).index(w)] += 8.0
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_modernbert(path: Path, seed: int = 0) -> Path:
    from transformers import ModernBertConfig, ModernBertForMaskedLM

    torch.manual_seed(seed)
    tok = _wordlevel_tokenizer(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], bert_style=True)
    cfg = ModernBertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=64, pad_token_id=0, bos_token_id=2,
                           eos_token_id=3, cls_token_id=2, sep_token_id=3, global_attn_every_n_layers=1,
                           local_attention=16)
    ModernBertForMaskedLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_gpt2(path: Path) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = _wordlevel_tokenizer(["<unk>", "<eos>"], bert_style=False)
    cfg = GPT2Config(vocab_size=len(tok), n_embd=32, n_layer=1, n_head=2, n_positions=64)
    GPT2LMHeadModel(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def make_remote_code(path: Path) -> Path:
    """A checkpoint whose config names a model class defined in its own Python file."""
    make_bert(path)
    import json

    cfg = json.loads((path / "config.json").read_text())
    cfg["model_type"] = "toy-remote"
    cfg["auto_map"] = {"AutoConfig": "modeling_toy.ToyConfig", "AutoModelForMaskedLM": "modeling_toy.ToyModel"}
    (path / "config.json").write_text(json.dumps(cfg))
    (path / "modeling_toy.py").write_text(
        "raise RuntimeError('remote code ran without the opt-in')\n"
    )
    return path
