"""The layout a newcomer reads: dlm_core's subpackages import only the layers below them, no module imports
another in a circle, nothing in dlm_core imports pages or Streamlit, no module is longer than the agreed
length, and the README's layout table names every module."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "dlm_core"
FOUNDATIONS = "foundations"  # the top-level modules: the toy languages, schedules, trajectory (and the package)
# what each part may import (besides itself): the layers point one way
ALLOWED = {
    "serving": set(),
    FOUNDATIONS: set(),
    "sampling": {FOUNDATIONS},
    "variants": {FOUNDATIONS, "sampling", "serving"},
    "studies": {FOUNDATIONS, "sampling", "variants", "serving"},
    "render": {FOUNDATIONS, "sampling"},
    "classroom": {FOUNDATIONS, "sampling", "variants", "studies", "render", "serving"},
    "cli": {FOUNDATIONS, "sampling", "variants", "studies", "render", "classroom", "serving"},
}
MAX_LINES = 450
DATA_ONLY = {"dlm_core.classroom.glossary_terms"}  # only definitions: may grow past MAX_LINES


def modules() -> dict[str, Path]:
    out = {}
    for p in sorted(CORE.rglob("*.py")):
        parts = p.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = p
    return out


def part_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("toy_language", "toy_language_large", "schedules", "trajectory",
                                       "trajectory_file"):
        return FOUNDATIONS
    if parts[1] in ("cli", "__main__"):
        return "cli"
    return parts[1]


def imports_of(path: Path, module: str) -> set[str]:
    """Every dlm_core module this one imports, at the top or inside a function."""
    tree = ast.parse(path.read_text())
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] in ("dlm_core", "pages", "streamlit")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] not in ("dlm_core", "pages", "streamlit"):
                continue
            known = modules()
            for a in node.names:  # `from dlm_core.render import chips` imports the module chips
                out.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: {i for i in imports_of(p, m) if i in mods and i != m} for m, p in mods.items()}


def test_nothing_in_dlm_core_imports_pages_or_streamlit():
    mods = modules()
    bad = {m: sorted(i for i in imports_of(p, m) if i.split(".")[0] in ("pages", "streamlit")) for m, p in mods.items()}
    assert not {m: v for m, v in bad.items() if v}


def test_the_layers_point_one_way():
    wrong = []
    for m, deps in graph().items():
        for d in deps:
            if part_of(d) != part_of(m) and part_of(d) not in ALLOWED[part_of(m)] and d != "dlm_core":
                wrong.append(f"{m} -> {d}")
    assert not wrong, wrong


def test_no_import_circle():
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for d in sorted(g[m]):
            if state.get(d) == 1:
                raise AssertionError("import circle: " + " -> ".join(stack[stack.index(d):] + [d]))
            if d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)


def test_no_module_is_too_long():
    long = {m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES
            and m not in DATA_ONLY}
    assert not long, long


def test_every_subpackage_says_what_lives_there():
    for m, p in modules().items():
        if p.name == "__init__.py":
            doc = ast.get_docstring(ast.parse(p.read_text()))
            assert doc and "import" in doc, f"{m}: its docstring says what lives there and what it may import"


def test_the_readme_layout_names_every_module():
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("## Layout"):]
    table = table[: table.index("\n## ", 5)]
    missing = []
    for p in modules().values():
        rel = p.relative_to(ROOT)
        if p.name == "__init__.py" and rel.parent != Path("dlm_core"):
            continue
        if not re.search(rf"`{re.escape(rel.stem)}`", table) and str(rel) not in table:
            missing.append(str(rel))
    assert not missing, f"the README's layout table does not name {missing}"


def test_the_docs_index_names_every_section_of_the_maths():
    sections = re.findall(r"^## (\d+)\. ", (ROOT / "docs" / "maths.md").read_text(), re.M)
    index = (ROOT / "docs" / "README.md").read_text()
    missing = [n for n in sections if not re.search(rf"\b{n}\. [A-Z]", index)]
    assert sections and not missing, f"docs/README.md does not name section(s) {missing} of docs/maths.md"


def test_the_cli_docstring_names_every_command():
    from dlm_core import cli

    commands = re.findall(r'add_parser\(\s*"([a-z-]+)"', (CORE / "cli.py").read_text())
    synopsis = cli.__doc__.split("\n\n")[0]  # the first paragraph
    assert commands and all(re.search(rf"[{{\s]{c}[,}}]", synopsis) for c in commands), (commands, synopsis)


def named_places(text: str) -> set[str]:
    """Every `dlm_core/...` path and `dlm_core.a.b` name a text gives, as a dotted name (attribute included)."""
    paths = re.findall(r"dlm_core/[\w/]+(?:\.py|\.[A-Za-z_]\w*)?", text)
    names = {m.replace("/", ".").removesuffix(".py") for m in paths}
    names |= set(re.findall(r"dlm_core(?:\.\w+)+", text))
    return {n.rstrip(".") for n in names}


def resolves(name: str) -> bool:
    """A module, a package, or an attribute of one (found in its source, without importing it)."""
    mods = modules()
    if name in mods:
        return True
    head, _, attr = name.rpartition(".")
    defined = re.compile(rf"^(?:class |def )?{re.escape(attr)}\b", re.M)
    return head in mods and defined.search(mods[head].read_text()) is not None


def test_every_module_the_readme_and_docs_name_exists():
    """A renamed or moved module leaves no stale path behind in the README or the docs."""
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    stale = {str(p.relative_to(ROOT)): sorted(n for n in named_places(p.read_text()) if not resolves(n)) for p in texts}
    stale = {k: v for k, v in stale.items() if v}
    assert not stale, f"names of modules that do not exist: {stale}"
