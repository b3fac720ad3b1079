"""Every repository path that README.md and docs/*.md mention exists (docs/..., store/..., plugin/...,
cli/..., tests/..., bench/...). Paths outside the repository are written ../shared/... and not checked."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A path starts at one of the top-level folders, not inside a longer path or a dotted module name.
PATH = re.compile(r"(?<![\w./-])((?:docs|store|plugin|cli|tests|bench)/[\w./*-]*)")


def mentioned_paths(text: str) -> set[str]:
    return {m.group(1).rstrip(".,:;") for m in PATH.finditer(text)}


def exists(path: str) -> bool:
    return any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()


def test_the_pattern_finds_paths_and_ignores_modules_and_outside_paths():
    text = (
        "see [docs/schema.md](docs/schema.md), `store/index/config.py` and tests/support/; "
        "not scannlite.store, ../shared/fixtures/README.md or segments/*.parquet."
    )
    assert mentioned_paths(text) == {"docs/schema.md", "store/index/config.py", "tests/support/"}


def test_every_path_mentioned_in_the_docs_exists():
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    missing = [
        f"{doc.relative_to(ROOT)}: {path}"
        for doc in docs
        for path in sorted(mentioned_paths(doc.read_text(encoding="utf-8")))
        if not exists(path)
    ]
    assert not missing, "paths mentioned but not in the repository:\n" + "\n".join(missing)
