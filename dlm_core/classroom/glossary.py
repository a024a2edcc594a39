"""The one glossary of the app: every piece of jargon the pages show, in plain words (no equations).

`GLOSSARY` (in glossary_terms.py, data only) maps a term to a definition of one or two sentences that
a newcomer understands; the pages' "How?" sections keep the equations. `FORMS` lists how the pages write
a term when that is not (only) the term itself: "bits/unit" for "bits per unit", "α_t" for the schedule, a
LaTeX spelling from an equation. `terms_in(text)` finds the terms a text uses, so a page can offer exactly those.
No Streamlit here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from dlm_core.classroom.glossary_terms import CONTEXT, FORMS, GIVES_WAY, GLOSSARY
from dlm_core.toy_language import REASON_WORDS

_WORD_BEFORE = r"[\w'’-]"  # a form does not start inside a word ("don't" has no t, "low-confidence" no confidence)
_WORD_AFTER = r"[\w-]"  # ... nor end inside one ("prompt's" is the prompt, "T-step" is not T)


def forms(term: str) -> tuple[str, ...]:
    """How the pages write a glossary term."""
    if term not in GLOSSARY:
        raise KeyError(f"{term!r} is not in the glossary")
    return FORMS.get(term, (term,))


def _pattern(form: str) -> str:
    """A form as a regex: whole words only, with an optional plural."""
    body = re.escape(form)
    if len(form) > 2 and form[-1].isalpha():
        body += "(?:s|es)?"
    if form[0].isalnum() or form[0] == "_":
        body = f"(?<!{_WORD_BEFORE})" + body
    if form[-1].isalnum():
        body += f"(?!{_WORD_AFTER})"
    return body


def _case_sensitive(form: str) -> bool:
    """Short forms ("t", "H", "TV", "KL") and forms with a capital ("LLaDA", "Dream") match only as
    written; other forms ("forward process", "temperature") match in any case."""
    return len(form) <= 2 or any(c.isupper() for c in form)


def _regexes(forms_: Iterable[str]) -> list[re.Pattern]:
    exact = [_pattern(f) for f in forms_ if _case_sensitive(f)]
    loose = [_pattern(f) for f in forms_ if not _case_sensitive(f)]
    return ([re.compile("|".join(exact))] if exact else []) + (
        [re.compile("|".join(loose), re.IGNORECASE)] if loose else [])


@lru_cache(maxsize=1)
def _matchers() -> list[tuple[str, list, re.Pattern | None, list, re.Pattern | None]]:
    """(term, its regexes, the context it needs, its regexes without the forms that give way, where they
    give way) for every term."""
    out = []
    for term in GLOSSARY:
        context = CONTEXT.get(term)
        form, there = GIVES_WAY.get(term, (None, None))
        out.append((term, _regexes(forms(term)), re.compile(context, re.IGNORECASE) if context else None,
                    _regexes(f for f in forms(term) if f != form), re.compile(there, re.IGNORECASE) if there else None))
    return out


def terms_in(text: str) -> list[str]:
    """The glossary terms a text uses (in the order they first appear), found by their forms as whole
    words: "KL" is not found in "KLM", nor "t" in "don't", nor "confidence" in "low-confidence"."""
    text = re.sub(r"[*`]", "", str(text))  # Markdown emphasis: "**other** error" says "other error"
    found = []
    for term, regexes, context, narrower, gives_way in _matchers():
        if context is not None and not context.search(text):
            continue
        if gives_way is not None and gives_way.search(text):
            regexes = narrower
        starts = [m.start() for rx in regexes for m in [rx.search(text)] if m]
        if starts:
            found.append((min(starts), term))
    return [term for _, term in sorted(found, key=lambda f: f[0])]


def definitions(terms: Iterable[str]) -> dict[str, str]:
    """{term: definition} of the given terms, each once, in alphabetical order (an unknown term is an
    error: every word a page offers must be in the glossary)."""
    unknown = [t for t in terms if t not in GLOSSARY]
    if unknown:
        raise KeyError(f"not in the glossary: {unknown}")
    return {t: GLOSSARY[t] for t in sorted(set(terms), key=lambda t: t.strip("[]").casefold())}


def verdict_words(reason: str) -> str:
    """A validity reason (toy_language.validity_reason) as a page says it: 'valid' or 'not valid: the verb
    does not agree with the subject (is / are)' (toy_language.REASON_WORDS)."""
    return "valid" if reason == "valid" else f"not valid: {REASON_WORDS[reason]}"
