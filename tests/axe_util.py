"""axe-core in the real browser: the WCAG 2.0 / 2.1 A and AA rules, run on a Playwright page.

axe-core's own file comes with the `axe-playwright-python` package (requirements-dev.txt), so the
check runs offline. `STREAMLIT_EXCEPTIONS` lists the violations that come from Streamlit itself and
cannot be fixed from the app (the README names each with its upstream issue): each is one rule on
one element, and only that pair is left out."""

from __future__ import annotations

from pathlib import Path

WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
BLOCKING = ("serious", "critical")

# (rule id, CSS selector of the element axe reports): Streamlit's own, not fixable from the app.
STREAMLIT_EXCEPTIONS: tuple[tuple[str, str], ...] = ()


def axe_script() -> str:
    import axe_playwright_python

    return (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text(encoding="utf-8")


def _excepted(rule: str, node: dict, page) -> bool:
    for rule_id, selector in STREAMLIT_EXCEPTIONS:
        if rule_id != rule:
            continue
        target = node["target"][-1] if node.get("target") else None
        if isinstance(target, list):  # inside a shadow root: the last selector names the element
            target = target[-1]
        if target and page.evaluate("([t, s]) => { const e = document.querySelector(t); return !!e && e.matches(s); }",
                                    [target, selector]):
            return True
    return False


def run_axe(page) -> list[dict]:
    """Every violation of the WCAG A / AA rules on the page now: [{id, impact, help, nodes: [...]}],
    with the Streamlit exceptions left out."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(axe_script())
    result = page.evaluate("(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}, "
                           "resultTypes: ['violations']})", WCAG_TAGS)
    out = []
    for v in result["violations"]:
        nodes = [n for n in v["nodes"] if not _excepted(v["id"], n, page)]
        if nodes:
            out.append({"id": v["id"], "impact": v["impact"], "help": v["help"],
                        "nodes": [{"target": n["target"], "html": n["html"][:200],
                                   "summary": n.get("failureSummary", "")[:300]} for n in nodes]})
    return out


def blocking(violations: list[dict]) -> list[dict]:
    """The violations of impact serious or critical."""
    return [v for v in violations if v["impact"] in BLOCKING]


def describe(violations: list[dict]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}, {len(v['nodes'])} nodes): {v['help']}; e.g. {v['nodes'][0]['html']}"
                     f" -- {v['nodes'][0]['summary']}" for v in violations)
