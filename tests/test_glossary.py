"""The glossary (dlm_core/glossary.py) and the "Words on this page" popover of every page.

Every page is rendered with AppTest and everything it shows as text is collected: titles, headers,
Markdown (tables included), captions, alerts, metrics, widget labels, help texts and options,
expander and status labels, the stage's title and legend, and the figures' axis titles, legends and
notes. Every glossary term found in that text must be offered by the page's popover, and every figure
(chart or stage) must have a caption right under it."""

from __future__ import annotations

import html
import json
import re
from functools import cache

import pytest
from conftest import generate_on_the_real_page, train_on_the_page
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import Block
from test_pages import APP, open_page

from dlm_core.classroom.glossary import definitions, terms_in, verdict_words
from dlm_core.classroom.glossary_terms import FORMS, GLOSSARY
from pages import GLOSSARY_LABEL, md_escape

# The jargon the pages show, written as they write it (found by reading every page and its "How?").
JARGON = [
    # the big picture
    "DLM", "diffusion language model", "diffusion LM", "autoregressive", "token", "unit", "toy language",
    "variant", "masked", "absorbing", "uniform", "Gaussian", "noise", "forward process", "corruption",
    "reverse process", "reverse step", "denoiser", "t", "noise level", "Steps T", "schedule", "α_t", "z_t", "z_s",
    "one-hot", "distribution", "[MASK]", "[PAD]", "canvas", "embedding", "E", "vector", "2-D projection",
    "principal axes",
    # scores
    "NELBO", "bound", "entropy", "H", "bits/unit", "bits per unit", "NELBO − H", "validity", "valid",
    "error reasons", "padding", "agreement", "predicate number", "other error", "coverage", "diversity", "support",
    "KL", "KL valid", "forward KL", "plug-in KL", "TV", "total variation", "standard error", "±", "p", "p_model",
    "empirical", "sample", "Monte Carlo", "unbiased estimate",
    # inside the model
    "SUBS", "p_θ(x | z_t)", "s = 0 posterior", "posterior", "x̂", "x_hat", "log-SNR", "γ", "logits", "softmax",
    "top-k", "parameters",
    # samplers
    "sampler", "strategy", "ancestral", "low-confidence", "margin", "entropy strategy", "random strategy",
    "fixed-count sampler", "semi-autoregressive", "block", "temperature", "ReMDM", "remasking", "η",
    "self-correction", "commit", "committed", "confidence", "score", "clamp", "guidance", "CFG", "prompt", "pinned",
    "unconditional", "end-of-sequence", "chat template", "threshold", "forward pass", "forward passes",
    # training
    "loss", "training step", "learning rate", "width", "low-discrepancy", "checkpoint", "shipped checkpoint", "seed",
    # the app
    "stage", "scrub", "grid", "trajectory", "JSON", "HTML", "viridis", "embedded", "MiniLM", "warm start", "hub",
    "remote code", "CPU",
    # models and papers
    "MDLM", "MD4", "RADD", "LLaDA", "Dream", "UDLM", "D3PM", "CDCD", "Plaid", "VDM", "Diffusion-LM",
]

# What the brief of the glossary asked for by name: each must be a term.
REQUIRED = [
    "DLM (diffusion language model)", "token / unit", "[MASK]", "forward process", "reverse process", "denoiser",
    "t (noise level)", "schedule α_t", "NELBO", "entropy H", "bits per unit", "NELBO − H", "validity", "coverage",
    "KL (divergence)", "KL valid", "forward KL", "TV (total variation)", "standard error", "SUBS", "p_θ(x | z_t)",
    "the s = 0 posterior", "x̂ (x_hat)", "embedding", "log-SNR γ", "ancestral", "low-confidence", "margin",
    "entropy (strategy)", "random (strategy)", "fixed-count sampler", "semi-autoregressive block", "temperature",
    "ReMDM remasking η", "self-correction", "clamping", "guidance (CFG)", "checkpoint", "seed", "error reasons",
    "MDLM", "LLaDA", "Dream", "UDLM", "D3PM", "CDCD", "Plaid", "VDM", "Diffusion-LM",
]


# ----------------------------------------------------------------------------- the glossary itself


def test_every_jargon_word_of_the_pages_has_a_plain_definition():
    for word in JARGON:
        terms = terms_in(word)
        assert terms, f"{word!r} is shown on a page but the glossary has no term for it"
        for term in terms:
            assert GLOSSARY[term].strip(), term
    assert set(REQUIRED) <= set(GLOSSARY), set(REQUIRED) - set(GLOSSARY)


def test_definitions_are_plain_words():
    for term, text in GLOSSARY.items():
        assert text[0].isupper() and text.endswith("."), term
        assert not any(c in text for c in "$\\=^∑∫"), f"{term}: no equations in a definition"
        sentences = re.findall(r"[.!?](?:\s|$)", text)
        assert 1 <= len(sentences) <= 2, f"{term}: one or two sentences, not {len(sentences)}"
        assert len(text) <= 330, f"{term}: {len(text)} characters"
        assert term not in ("", text)
    assert set(FORMS) <= set(GLOSSARY), set(FORMS) - set(GLOSSARY)


def test_every_term_is_found_by_its_own_forms():
    for term in GLOSSARY:
        written = FORMS.get(term, (term,))[0]
        context = " (a strategy)" if "(strategy)" in term else ""
        assert term in terms_in(written + context), (term, written)


def test_terms_in_finds_whole_words_with_sensible_case():
    assert terms_in("TV: total variation") == ["TV (total variation)"]
    assert "TV (total variation)" not in terms_in("tv tvs activity TVA")
    assert "KL (divergence)" in terms_in("the KL of the samples")
    assert "KL (divergence)" not in terms_in("KLM and kl")
    assert terms_in("NELBO − H") == ["NELBO", "NELBO − H", "entropy H"]
    assert "entropy H" not in terms_in("Hub id, HTML and h")
    assert "t (noise level)" in terms_in("corrupted at this t") and "t (noise level)" in terms_in("at t = 0.5")
    assert "t (noise level)" not in terms_in("don't, can’t, T, z_t, the T-step sampler")
    assert "steps T" in terms_in("Steps T for the table") and "steps T" not in terms_in("the T-step sampler")
    assert terms_in("Forward Process") == ["forward process"]  # longer forms: any case
    assert "Dream" not in terms_in("a dream")  # a capital makes a form case-sensitive
    assert "prompt" in terms_in("the prompt's rows")
    assert "token / unit" in terms_in("six units") and "DLM (diffusion language model)" in terms_in("masked DLMs")
    assert "confidence (score)" not in terms_in("low-confidence") and "low-confidence" in terms_in("low-confidence")
    assert "autoregressive model" not in terms_in("semi-autoregressive")
    assert "[MASK]" not in terms_in("re-masked") and "ReMDM remasking η" in terms_in("re-masked")
    assert "sample" not in terms_in("the sampler") and "sampler" in terms_in("the sampler")
    assert "error reasons" in terms_in("Not a sentence: **other** error.")
    assert "error reasons" not in terms_in("the other positions")
    # a strategy name counts as the strategy only where the text speaks of strategies
    assert "random (strategy)" not in terms_in("six random units")
    assert "random (strategy)" in terms_in("Strategy: ancestral, random, low-confidence.")
    assert "entropy (strategy)" not in terms_in("the exact entropy H")
    assert terms_in("Strategy: margin, entropy.") == ["strategy", "margin", "entropy (strategy)"]  # not entropy H
    assert "entropy H" in terms_in("strategies, and the exact entropy H") and "entropy H" in terms_in("entropy")
    assert terms_in("z_t, then α_t and NELBO") == ["z_t (noisy sequence)", "schedule α_t", "NELBO"]  # in order


def test_verdict_words():
    assert verdict_words("valid") == "valid"
    assert verdict_words("predicate_number") == ("not valid: the predicate's number is wrong (a plural s missing or "
                                                 "extra)")
    assert verdict_words("other").startswith("not valid: a tangle: no single fix")  # "other", with a plain name
    assert terms_in(verdict_words("other")) == ["validity", "error reasons"]


def test_definitions_of_unknown_words_fail_loudly():
    assert list(definitions(["[PAD]", "TV (total variation)", "[PAD]", "ancestral"])) == [
        "ancestral", "[PAD]", "TV (total variation)"]
    with pytest.raises(KeyError):
        definitions(["[PAD]", "not a term"])


def _popover_script():
    from pages import glossary_popover

    glossary_popover(["[MASK]", "schedule α_t", "p, p_model"])


def test_the_popover_lists_the_definitions_escaped():
    at = AppTest.from_function(_popover_script)
    at.run()
    assert not at.exception
    pop = _popover(at)
    text = pop.children[0].value
    assert text.splitlines()[0] == f"- **\\[MASK\\]**: {md_escape(GLOSSARY['[MASK]'])}"  # no link, no HTML
    assert _offered(pop) == {"[MASK]", "schedule α_t", "p, p_model"}
    assert "α\\_t" in text and "p\\_model" in text


def _unknown_script():
    from pages import glossary_popover

    glossary_popover(["not a term"])


def test_the_popover_refuses_a_word_the_glossary_lacks():
    at = AppTest.from_function(_unknown_script)
    at.run()
    assert at.exception and "not a term" in at.exception[0].value


# ----------------------------------------------------------------------------- the pages


def _blocks(node):
    for child in node.children.values():
        if isinstance(child, Block):
            yield child
            yield from _blocks(child)


def _popovers(at):
    return [b for root in (at.main, at.sidebar) for b in _blocks(root)
            if b.type == "popover" and b.proto.popover.label == GLOSSARY_LABEL]


def _popover(at):
    found = _popovers(at)
    assert len(found) == 1, f"expected one '{GLOSSARY_LABEL}', found {len(found)}"
    return found[0]


def _offered(pop) -> set[str]:
    """The terms a popover defines (it writes each as **term**: definition)."""
    text = "\n".join(getattr(c, "value", "") for c in pop.children.values())
    return {t for t in GLOSSARY if f"- **{md_escape(t)}**: {md_escape(GLOSSARY[t])}" in text}


def _title(t) -> str:
    return t.get("text", "") if isinstance(t, dict) else str(t or "")


def _figure_texts(fig: dict):
    layout = fig.get("layout", {})
    yield _title(layout.get("title"))
    for key, axis in layout.items():
        if key.startswith(("xaxis", "yaxis")) and isinstance(axis, dict):
            yield _title(axis.get("title"))
            yield from map(str, axis.get("ticktext", []))
    for note in layout.get("annotations", []):
        yield note.get("text", "")
    for trace in fig.get("data", []):
        if trace.get("name") and trace.get("showlegend") is not False:
            yield trace["name"]
        bar = trace.get("colorbar") or (trace.get("marker") or {}).get("colorbar")
        if bar:
            yield _title(bar.get("title"))


def _stage_texts(d: dict):
    yield d["title"]
    yield d["step_name"]
    yield d["note"]
    yield from (d["state_list"][i]["label"] for i in d["legend"])


def _texts(node, skip):
    for child in node.children.values():
        if child is skip:
            continue
        if isinstance(child, Block):
            yield getattr(child, "label", "") or ""
            yield from _texts(child, skip)
        elif child.type == "plotly_chart":
            yield from _figure_texts(json.loads(child.proto.spec))
        elif child.type == "bidi_component":
            yield from _stage_texts(json.loads(child.proto.json))
        else:
            for attr in ("value", "label", "help", "placeholder"):
                try:
                    value = getattr(child, attr, None)
                except Exception:  # noqa: BLE001 (a widget without that property)
                    value = None
                if isinstance(value, str):
                    yield value
            options = getattr(child, "options", None)
            if options:
                yield f"{getattr(child, 'label', '')}: {', '.join(map(str, options))}."


def page_text(at, skip=None) -> str:
    """Everything the page shows as text (HTML snippets as their text), except `skip`."""
    raw = "\n".join(t for root in (at.main, at.sidebar) for t in _texts(root, skip) if t)
    return html.unescape(re.sub(r"<[^>]+>", " ", raw))


def _render_train() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.switch_page("pages/views/train.py")
    at.run()
    train_on_the_page(at, 50)
    assert not at.exception, at.exception
    return at


def _render_real() -> AppTest:
    return generate_on_the_real_page(APP)  # the views of a generation too


PAGES = {
    "home": lambda: open_page("pages/views/home.py"),
    "forward-masked": lambda: open_page("pages/views/forward.py", {"fwd_variant": "masked"}),
    "forward-uniform": lambda: open_page("pages/views/forward.py", {"fwd_variant": "uniform"}),
    "forward-gaussian": lambda: open_page("pages/views/forward.py", {"fwd_variant": "gaussian"}),
    "reverse-masked": lambda: open_page("pages/views/reverse.py", {"variant": "masked"}),
    "reverse-masked-ancestral": lambda: open_page("pages/views/reverse.py", {"strategy": "ancestral", "steps": "12",
                                                                              "eta": "0.4", "seed": "2"}),
    "reverse-uniform": lambda: open_page("pages/views/reverse.py", {"variant": "uniform"}),
    "reverse-gaussian": lambda: open_page("pages/views/reverse.py", {"variant": "gaussian"}),
    "compare": lambda: open_page("pages/views/compare.py"),
    "compare-masked": lambda: open_page("pages/views/compare.py", {"cmp_view": "Strategies and schedules"}),
    "compare-threshold": lambda: open_page("pages/views/compare.py", {"cmp_view": "Threshold decoding"}),
    "compare-seed": lambda: open_page("pages/views/compare.py", {"cmp_view": "One seed, every variant"}),
    "train": _render_train,
    "real": _render_real,
}

# Text that must be among what is collected (so each source is read: tables, help, options, stage, figures).
MUST_SHOW = {
    "home": ["Exact entropy H", "re-masked at this step (ReMDM)", "D3PM"],
    "forward-masked": ["corrupted at this t", "Schedule α_t", "t (0 = data, 1 = noise)", "MDLM"],
    "forward-uniform": ["one-hot", "colour: the probability"],
    "forward-gaussian": ["units (rows of E)", "log-SNR", "σ² (noise)"],
    "reverse-masked": ["Strategy: ancestral, random, low-confidence, margin, entropy, threshold.", "(LLaDA / Dream)",
                       "committed at this step", "score when committed", "p_θ(x | z_t)"],
    "reverse-masked-ancestral": ["re-masked at this step (ReMDM)", "ReMDM remasking η"],
    "reverse-uniform": ["changed at this step (self-correction)", "s = 0 posterior", "positions changed"],
    "reverse-gaussian": ["Clamp x̂ to the nearest embedding", "Paths in embedding space", "CDCD"],
    "compare": ["| NELBO − H (bits/unit) |", "**TV** ↓", "coverage of the support", "Show: Quality against steps"],
    "compare-masked": ["η (remasking cap)", "Confidence ordering (low-confidence)"],
    "compare-threshold": ["forward passes per sentence", "Fast-dLLM"],
    "compare-seed": ["One seed, one click", "[PAD]"],
    "train": ["NELBO (evaluation)", "entropy H = ", "training step", "Learning rate"],
    "real": ["Model ready: embedded", "Guidance scale w (unsupervised CFG)", "score when committed", "Top-k"],
}

# How many figures (charts, HTML / SVG figures and stages) each rendering has, at least: the caption check is
# not empty.
FIGURES = {"home": 0, "forward-masked": 3, "forward-uniform": 3, "forward-gaussian": 3, "reverse-masked": 4,
           "reverse-masked-ancestral": 4, "reverse-uniform": 3, "reverse-gaussian": 4, "compare": 2,
           "compare-masked": 3, "compare-threshold": 1, "compare-seed": 3, "train": 1, "real": 3}


def is_svg_figure(child) -> bool:
    """An HTML figure of svg_figures (drawn with show_html): it says role='figure' or role='img'."""
    return child.type == "markdown" and re.search(r"role='(figure|img)'", child.value or "") is not None


@cache
def rendered(name: str) -> AppTest:
    return PAGES[name]()


def _shows(word: str, text: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text) is not None


@pytest.mark.parametrize("name", list(PAGES))
def test_every_term_a_page_shows_is_in_the_glossary_and_offered_there(name):
    at = rendered(name)
    pop = _popover(at)
    offered = _offered(pop)
    text = page_text(at, skip=pop)
    for must in MUST_SHOW[name]:
        assert must in text, f"{must!r} not collected from the {name} page"
    for word in JARGON:  # the written-out jargon: the page offers a meaning of each one it shows
        if _shows(word, text):
            senses = set(terms_in(word)) | {t for t in terms_in(f"{word} strategy") if "(strategy)" in t}
            assert senses & offered, f"{name} shows {word!r} but offers none of its meanings {senses}"
    found = terms_in(text)  # and every term the glossary finds anywhere on the page
    missing = [t for t in found if t not in offered]
    assert not missing, f"the {name} page shows {missing} but its '{GLOSSARY_LABEL}' does not offer them"
    assert len(found) >= 10


@pytest.mark.parametrize("name", list(PAGES))
def test_every_figure_has_a_caption_under_it(name):
    at = rendered(name)
    n = 0
    for block in [at.main, at.sidebar, *(b for root in (at.main, at.sidebar) for b in _blocks(root))]:
        children = list(block.children.values())
        for i, child in enumerate(children):
            figure = child.type in ("plotly_chart", "bidi_component") or is_svg_figure(child)
            if not isinstance(child, Block) and figure:
                n += 1
                after = children[i + 1] if i + 1 < len(children) else None
                assert after is not None and after.type == "caption", (
                    f"{name}: the {child.type} #{n} has no caption right under it")
                assert after.value.strip()
    assert n >= FIGURES[name]
