"""The canvas as a person reads it: no [CLS] / [SEP] in the sentence, WordPiece pieces and punctuation joined."""

import pytest
import torch
from tiny_models import make_bert

from dlm_core.render.stage import running_text_pieces, stage_data
from dlm_core.sampling.masked_sampler import MaskedSamplerConfig
from dlm_core.variants import hf_adapter as H


def test_wordpiece_pieces_and_punctuation_join_the_word_before_them():
    pieces = running_text_pieces(["[CLS]", "the", "king", "##s", ",", "o", "'", "er", "all", "!", "i", "'", "ll",
                                  "see", "my", "wife", "'", "s", "[SEP]"], special={"[CLS]", "[SEP]"})
    assert "".join(pieces) == " the kings, o' er all! i'll see my wife's"
    assert "".join(running_text_pieces(["Ġthe", "Ġking", "s", ","])) == " the kings,"  # byte-level BPE as before


@pytest.fixture(scope="module")
def chatty_specials(tmp_path_factory):
    """A tiny BERT that likes to write [SEP] and [CLS] inside its generation."""
    lm = H.load(make_bert(tmp_path_factory.mktemp("bert")))
    with torch.no_grad():
        for name in ("[SEP]", "[CLS]", "[PAD]"):
            lm.model.cls.predictions.decoder.bias[lm.tokenizer.convert_tokens_to_ids(name)] += 6.0
    return lm


def test_the_sentence_on_the_page_has_no_special_tokens(chatty_specials):
    lm = chatty_specials
    traj = H.generate(lm, "the cat sat", 12, MaskedSamplerConfig(steps=6, strategy="low-confidence",
                                                                  temperature=0.0, top_k=3))
    written = {lm.token_text(i) for i in traj.final}
    assert {"[CLS]", "[SEP]"} <= written  # the model did write them (and the canvas holds them)
    data = stage_data(traj)
    for k in range(traj.n_steps + 1):  # the player's sentence: each position's text, in order
        sentence = "".join(data["texts"][str(i)] for i in data["tokens"][k])
        assert not {"[CLS]", "[SEP]", "[PAD]"} & set(sentence.split()) and "[" not in sentence
    assert "the cat sat" in sentence
    assert data["labels"][str(lm.tokenizer.sep_token_id)] == "[SEP]"  # the grid still names them
    for text in traj.text_per_step:  # the text streamed while it generates
        assert "[SEP]" not in text and "[CLS]" not in text and "[PAD]" not in text
