"""What the poll draws as HTML, built through safe_html (every value escaped): the room code with a QR code
of the join link beside it, the join link, and the tally bars. The teacher's view is for a projector:
its code, link and bars are at least 28 px at 1920 x 1080 (tests/test_poll_browser.py measures them)."""

from __future__ import annotations

import segno

from dlm_core.render.safe_html import Markup, html_of, join

QR_BORDER = 4  # modules of white around the code: the quiet zone a reader needs

CSS = Markup("""<style>
.poll-room {display: flex; align-items: center; gap: 1.4rem; flex-wrap: wrap;}
.poll-code-label {font-size: max(28px, 1.6vw); opacity: .85; margin-top: .4rem;}
.poll-code {font: 700 clamp(2.4rem, 4vw, 5rem)/1.1 ui-monospace, SFMono-Regular, Menlo, monospace;
            letter-spacing: .08em; margin: .1rem 0 .4rem 0; white-space: nowrap;}
.poll-code span + span {margin-left: .3em;}
.poll-qr svg {width: clamp(140px, 11vw, 240px); height: auto; display: block;}
.poll-link-label {font-size: max(28px, 1.5vw); margin-top: .6rem;}
.poll-link {font: 600 max(28px, 1.6vw)/1.25 ui-monospace, SFMono-Regular, Menlo, monospace;
            overflow-wrap: anywhere; margin-bottom: .6rem;}
.poll-prompt {font-size: max(28px, 1.7vw); font-weight: 600; line-height: 1.25; margin: .2rem 0 .6rem 0;}
.poll-bars {margin: .4rem 0 1rem 0;}
.poll-bar-label {line-height: 1.25; margin-top: .5rem;}
.poll-bar-track {background: #e8e8e8; border-radius: .25em; overflow: hidden;}
.poll-bar-fill {background: #4477aa; height: 100%;}
.poll-bar-fill.answer {background: #228833;}
.poll-bars.big .poll-bar-label {font-size: max(28px, 1.6vw);}
.poll-bars.big .poll-bar-track {height: max(28px, 1.5vw);}
.poll-bars.small .poll-bar-label {font-size: 1rem;}
.poll-bars.small .poll-bar-track {height: .9rem;}
</style>""")


def qr_matrix(text: str) -> tuple[tuple[int, ...], ...]:
    """The QR code of `text` (error correction M: a projector's glare or a blur still reads), rows of 0/1
    with the quiet zone around them."""
    qr = segno.make(text, error="m", micro=False)
    rows = [tuple(int(bool(v)) for v in row) for row in qr.matrix]
    width = len(rows[0]) + 2 * QR_BORDER
    blank = (0,) * width
    return (blank,) * QR_BORDER + tuple((0,) * QR_BORDER + r + (0,) * QR_BORDER for r in rows) + \
        (blank,) * QR_BORDER


def qr_svg(text: str, label: str = "QR code of the join link") -> Markup:
    """Inline SVG of the QR code of `text`: one path, a run of dark modules per rectangle, crisp edges."""
    m = qr_matrix(text)
    runs = []
    for y, row in enumerate(m):
        x = 0
        while x < len(row):
            if row[x]:
                start = x
                while x < len(row) and row[x]:
                    x += 1
                runs.append(f"M{start} {y}h{x - start}v1h-{x - start}z")
            else:
                x += 1
    n = len(m)
    return html_of('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {n} {n}" role="img" aria-label="{label}" '
                   'shape-rendering="crispEdges" data-testid="poll-qr-svg"><title>{label}</title>'
                   '<rect width="{n}" height="{n}" fill="#ffffff"/><path fill="#000000" d="{d}"/></svg>',
                   n=n, label=f"{label}: {text}", d="".join(runs))


def room_block(code: str, link: str) -> Markup:
    """The room code in two groups (easier to read off a projector; typed with or without the gap), the QR
    code of the join link beside it, and the link itself, large."""
    half = len(code) // 2
    groups = join([html_of("<span>{g}</span>", g=g) for g in (code[:half], code[half:]) if g])
    return html_of('{css}<div class="poll-room"><div><div class="poll-code-label">Room code</div>'
                   '<div class="poll-code" data-testid="poll-code" aria-label="{code}">{groups}</div></div>'
                   '<div class="poll-qr" data-testid="poll-qr">{qr}</div></div>'
                   '<div class="poll-link-label">Students join at</div>'
                   '<div class="poll-link" data-testid="poll-link">{link}</div>',
                   css=CSS, code=code, groups=groups, qr=qr_svg(link), link=link)


def prompt_block(prompt: str) -> Markup:
    return html_of('{css}<div class="poll-prompt" data-testid="poll-prompt">{p}</div>', css=CSS, p=prompt)


def tally_bars(tally: dict[str, int], answer_index: int | None = None, mine: str | None = None, *,
               big: bool = False) -> Markup:
    """One bar per choice, in order, each labelled "choice: n (p %)" with "✓ the answer" (once revealed)
    and "yours" (a student's own): the answer is told by its mark, not by its colour alone."""
    total = sum(tally.values())
    rows = []
    for i, (choice, n) in enumerate(tally.items()):
        pct = 100 * n / total if total else 0.0
        marks = (" · ✓ the answer" if i == answer_index else "") + (" · yours" if choice == mine else "")
        rows.append(html_of('<div class="poll-bar-label"><b>{choice}</b>: {n} ({pct} %){marks}</div>'
                            '<div class="poll-bar-track" role="img" aria-label="{choice}: {n} of {total}">'
                            '<div class="poll-bar-fill{cls}" style="width: {w}%"></div></div>',
                            choice=choice, n=n, pct=Markup(f"{pct:.0f}"), marks=marks, total=total,
                            cls=" answer" if i == answer_index else "", w=Markup(f"{pct:.1f}")))
    return html_of('{css}<div class="poll-bars {size}" data-testid="poll-bars">{rows}</div>', css=CSS,
                   size="big" if big else "small", rows=join(rows))
