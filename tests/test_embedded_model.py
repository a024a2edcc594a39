"""The embedded real-text model: files, size, loading path, and its model card's numbers."""

import json
import math
import re
import sys

import pytest
import torch

from dlm_core import ROOT
from dlm_core.sampling.masked_sampler import MaskedSamplerConfig
from dlm_core.variants import hf_adapter as H

sys.path.insert(0, str(ROOT / "scripts"))
from embedded_corpus import SPEAKER_TAG, STAGE_DIRECTION, clean_play  # noqa: E402

MODEL = H.EMBEDDED
# one of each form the Gutenberg play files use (seen across the 36 plays): a cast list, act and scene
# headings, bracketed stage directions (over two lines, inside a speech), speaker tags alone on their line
# (mixed case, capitals with and without a full stop, numbered, "MRS."), a tag opening a line, an exit line
RAW_PLAY = """THE TEMPEST

DRAMATIS PERSONAE

ALONSO, King of Naples
SEBASTIAN, his Brother

ACT 1
SCENE 1
[On a ship at sea; a tempestuous noise of thunder and lightning
heard]

MASTER.
Boatswain!

BOATSWAIN.
Here, master: what cheer?

[Exit]

Ber.
Who's there? Nay, answer me: stand, and unfold yourself.

LADY MACBETH.
Out, damned spot! [A cry within] Out, I say!

GLOSTER
Now is the winter of our discontent

BUCKINGHAM.
Good morrow, and well met.
NORFOLK. I thank your Grace,
Healthful.

MRS. PAGE.
What! have I scaped love-letters?

1. CAR.
Heigh-ho! an't be not four by the day--

[Enter ALONSO, SEBASTIAN, ANTONIO, FERDINAND, GONZALO, and
OTHERS]

Scene II. A room in the Castle.

Exeunt.

THE END
"""
SPOKEN = ("Boatswain! Here, master: what cheer? Who's there? Nay, answer me: stand, and unfold yourself. Out, damned "
          "spot! Out, I say! Now is the winter of our discontent Good morrow, and well met. I thank your Grace, "
          "Healthful. What! have I scaped love-letters? Heigh-ho! an't be not four by the day —")


def test_cleaning_keeps_the_spoken_text_only():
    clean = clean_play(RAW_PLAY)
    assert clean == SPOKEN
    assert not STAGE_DIRECTION.search(clean) and "[" not in clean and "]" not in clean
    for tag in ("MASTER", "BOATSWAIN", "Ber.", "LADY MACBETH", "GLOSTER", "NORFOLK", "MRS. PAGE", "CAR.", "ALONSO",
                "ACT", "SCENE", "Scene", "Exeunt", "THE END", "DRAMATIS"):
        assert tag not in clean, tag
    assert not any(SPEAKER_TAG.match(line.strip()) for line in clean.split(". "))


def test_the_shipped_held_out_text_has_no_speaker_tags_or_stage_directions(lm):
    held = json.loads((MODEL / "heldout.json").read_text())
    text = " ".join(lm.decode(row[1:-1]) for row in held["ids"])
    words = re.findall(r"[a-z]+|[\[\]]", text)
    assert len(words) > 5_000  # 128 windows of 64 tokens
    # the uncased tokenizer keeps no capitals, so the traces a tag or direction would leave are looked for:
    # brackets, exit lines, headings, and the held-out plays' speakers named before a full stop at the
    # start of a speech (in the raw text "PROSPERO." opens 114 speeches of The Tempest)
    assert "[" not in words and "]" not in words
    assert not {"exeunt", "exit"} & set(words)
    assert not re.search(r"\b(act|scene) [ivx]+\b", text)
    speakers = ("prospero", "miranda", "ariel", "caliban", "viola", "olivia", "malvolio", "orsino")
    tags = sum(text.count(f"{name}. ") for name in speakers)
    names = sum(text.count(name) for name in speakers)
    assert tags <= 0.25 * names  # a name before a full stop is then the end of a spoken sentence


def test_files_and_size():
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "README.md",
                 "heldout.json"):
        assert (MODEL / name).exists(), name
    hf_files = [p for p in MODEL.iterdir() if p.name != "heldout.json"]
    assert sum(p.stat().st_size for p in hf_files) <= 50 * 1024 * 1024


@pytest.fixture(scope="module")
def lm():
    return H.load(None)  # the default: exactly the from_pretrained path a hub id takes


def test_loads_through_the_same_path_as_a_hub_model(lm):
    assert lm.name == H.EMBEDDED_NAME and lm.mask_id == lm.tokenizer.mask_token_id
    traj = H.generate(lm, "to be or not to be", 16, MaskedSamplerConfig(steps=8, strategy="low-confidence",
                                                                   temperature=0.0, block_length=8))
    words = re.findall(r"[a-z]+", lm.decode(traj.final[traj.gen_start:traj.gen_start + 16]))
    assert len(words) >= 4 and len(set(words)) >= 3  # text, not one repeated token


def test_model_card_numbers_are_reproduced_on_the_shipped_held_out_set(lm):
    stats = json.loads((MODEL / "training_stats.json").read_text())
    card = (MODEL / "README.md").read_text()
    new, old = stats["measures"]["new"], stats["measures"]["previous"]
    assert stats["final"] and f"{stats['unigram_bits']:.3f}" in card
    for m in (new, old):
        for key in ("bits_per_char", "bits_per_token", "distinct_bigrams"):
            assert f"{m[key]:.3f}" in card
    # both models on the same held-out windows (and the same t and masks): this one is better by more than two
    # standard errors taken as independent (conservative: the two estimates share their windows and masks)
    assert new["bits_per_char"] < old["bits_per_char"] - 2 * math.hypot(new["bits_per_char_se"],
                                                                         old["bits_per_char_se"])
    assert stats["nelbo_bits"] == new["bits_per_token"]
    held = json.loads((MODEL / "heldout.json").read_text())
    assert sum(held["chars"]) == stats["held_chars"] and len(held["prompts"]) == 20
    x = torch.tensor(held["ids"])
    assert held["unigram_bits_per_token"] == pytest.approx(stats["unigram_bits"])
    # recompute the NELBO, one stratified t per sequence, with the same masked diffusion estimator
    g = torch.Generator().manual_seed(123)
    n = x.shape[0]
    t = 1e-3 + (1 - 1e-3) * (torch.arange(n) + torch.rand(n, generator=g)) / n
    m = torch.rand(x.shape, generator=g) < t[:, None]
    m[:, 0] = m[:, -1] = False
    z = x.masked_fill(m, lm.mask_id)
    with torch.no_grad():
        logits = torch.cat([lm(chunk) for chunk in z.split(32)])
    ce = torch.nn.functional.cross_entropy(logits[m].double(), x[m], reduction="none")
    per = torch.zeros(n, dtype=torch.float64).index_add_(0, m.nonzero()[:, 0], ce) / t.double()
    per = per / (x.shape[1] - 2) / math.log(2)
    value, se = float(per.mean()), float(per.std() / math.sqrt(n))
    assert abs(value - stats["nelbo_bits"]) <= 4 * math.hypot(se, stats["nelbo_stderr"])
