"""Shared test helpers live in tests/support/ only: a test module importing another test module runs
that module's fixtures and tests' imports in every importer and hides where a helper belongs (issue 25)."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def imported_test_modules(source: str) -> list[str]:
    """The ``tests.test_*`` modules a module's source imports."""
    names = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return [n for n in names if n.startswith("tests.test_") or n == "tests.conftest"]


def test_no_test_module_imports_another():
    offenders = {
        str(p.relative_to(TESTS)): found
        for p in sorted(TESTS.rglob("*.py"))
        if (found := imported_test_modules(p.read_text()))
    }
    assert not offenders, f"move these helpers to tests/support/: {offenders}"


def test_the_check_sees_both_import_forms():
    assert imported_test_modules("from tests.test_x import f\nimport tests.test_y\nfrom tests.support.a import b") == [
        "tests.test_x",
        "tests.test_y",
    ]
