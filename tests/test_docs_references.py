"""The docs the code points to are in this repository: every `name.md` named in code, templates, tests and
docs is a file here (docs/ or the top level), never a design document kept elsewhere."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ("leaderboard", "usage", "tests", "templates", "static/js", "static/css", "bench", "docs")
REFERENCE = re.compile(r"(?<![\w/.-])((?:docs/)?[A-Za-z][\w-]*\.md)\b")


def referenced_docs() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    files = [ROOT / "README.md", ROOT / "Makefile"]
    for folder in SOURCES:
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".html", ".js", ".css", ".md"}]
    for path in files:
        if "axe" in path.parts or path == Path(__file__):  # the vendored axe-core; this file's own examples
            continue
        for name in REFERENCE.findall(path.read_text(encoding="utf-8")):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_doc_the_code_names_is_in_the_repository():
    missing = {
        name: sorted(where)
        for name, where in referenced_docs().items()
        if not (ROOT / name).exists() and not (ROOT / "docs" / name).exists()
    }
    assert missing == {}


def test_the_design_documents_kept_outside_are_not_named():
    named = referenced_docs()
    assert "ARCHITECTURE.md" not in named and "provider-formats.md" not in named
