"""The layers point one way, and only the catalog's modules run SQL (README, "How it fits together").

cli -> plugin -> store. Inside the plugin layer, the dual encoder and the demo (plugin/dual_encoder/) sit on top:
nothing else in the plugin or the store imports or names them, so the core runs without them. The store imports neither plugin nor cli, and names no plugin or cli
function as a string either (``run_in("device", "scannlite.plugin...:fn")`` would be an import
in disguise); the plugin imports no cli code except the sqlite-utils plugin, which mounts the
CLI itself. Only store/catalog/ runs SQL or touches a catalog's (private) connection: everything
else asks its functions, so a transaction's scope is decided in one place. Checked on the source's
syntax trees, so an import inside a function counts too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = {"store": "scannlite.store", "plugin": "scannlite.plugin", "cli": "scannlite.cli"}
MAY_IMPORT_CLI = {"plugin/integrations/sqlite_utils_plugin.py"}
SQL = re.compile(r"^\s*((SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA)\s+\S|(BEGIN|COMMIT|ROLLBACK)\b)", re.I)
SQL_HOME = "store/catalog/"
#: A sqlite3 connection's methods that run SQL, and the names a catalog keeps its connection under.
RUNS_SQL = {"execute", "executemany", "executescript"}
CONNECTION = {"conn", "_conn"}
#: The catalog's SQL helpers: they take a connection, so nothing outside the catalog has one to give them.
CATALOG_SQL = "scannlite.store.catalog.sql"
FUNC_REF = re.compile(r"^scannlite\.(plugin|cli)(\.\w+)*(:\w+)?$")


def sources(layer: str):
    for path in sorted((ROOT / layer).rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), filename=str(path))


def imported_modules(tree: ast.AST, package: str) -> set[str]:
    """Absolute names of every module a file imports (relative imports resolved)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                found.add(".".join(base + ([node.module] if node.module else [])))
            else:
                found.add(node.module)
    return found


def package_of(rel: str) -> str:
    """The package a file's relative imports resolve against (plugin/api/ is the ``scannlite`` package)."""
    if rel.startswith("plugin/api/"):
        return "scannlite"
    layer, *rest = rel[:-3].split("/")
    return ".".join([LAYERS[layer], *rest[:-1]])


def strings(tree: ast.AST):
    docstrings = {
        id(n.body[0].value)
        for n in ast.walk(tree)
        if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        and n.body
        and isinstance(n.body[0], ast.Expr)
        and isinstance(n.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            yield node.value
        elif isinstance(node, ast.JoinedStr):
            yield "".join(v.value for v in node.values if isinstance(v, ast.Constant))


def test_the_layout_is_what_the_readme_says():
    for layer in LAYERS:
        assert list(sources(layer)), f"{layer}/ holds no Python"


@pytest.mark.parametrize("rel,tree", list(sources("store")), ids=lambda v: v if isinstance(v, str) else "")
def test_store_uses_neither_plugin_nor_cli(rel, tree):
    bad = [m for m in imported_modules(tree, package_of(rel)) if m.startswith(("scannlite.plugin", "scannlite.cli"))]
    assert not bad, f"{rel} imports {bad}"
    refs = [s for s in strings(tree) if FUNC_REF.match(s)]
    assert not refs, f"{rel} names code of a higher layer: {refs}"
    heavy = [
        m
        for m in imported_modules(tree, package_of(rel))
        if m.split(".")[0] in ("tensorflow", "tflite_support", "keras")
    ]
    assert not heavy, f"{rel} imports {heavy}; the store never loads TensorFlow or the Task Library"


@pytest.mark.parametrize("rel,tree", list(sources("plugin")), ids=lambda v: v if isinstance(v, str) else "")
def test_plugin_does_not_use_cli(rel, tree):
    if rel in MAY_IMPORT_CLI:
        return
    bad = [m for m in imported_modules(tree, package_of(rel)) if m.startswith("scannlite.cli")]
    assert not bad, f"{rel} imports {bad}"


DUAL_ENCODER = re.compile(r"^scannlite\.plugin\.dual_encoder(\.\w+)*(:\w+)?$")


@pytest.mark.parametrize(
    "rel,tree",
    [(r, t) for r, t in list(sources("store")) + list(sources("plugin")) if not r.startswith("plugin/dual_encoder/")],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_the_core_never_uses_the_dual_encoder(rel, tree):
    bad = [m for m in imported_modules(tree, package_of(rel)) if m.startswith("scannlite.plugin.dual_encoder")]
    assert not bad, f"{rel} imports {bad}"
    refs = [s for s in strings(tree) if DUAL_ENCODER.match(s)]
    assert not refs, f"{rel} names the dual encoder's code: {refs}"


#: Lines a module of store/ or plugin/ may have (issue 25): a longer one holds more than one job; split it by job.
MAX_LINES = 400


@pytest.mark.parametrize("layer", ["store", "plugin"])
def test_no_module_is_longer_than_the_limit(layer):
    long = {
        p.relative_to(ROOT).as_posix(): n
        for p in sorted((ROOT / layer).rglob("*.py"))
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, f"over {MAX_LINES} lines: {long}; split each by job into modules named for it"


def test_the_sub_packages_are_the_readme_s():
    """The README's tour names every sub-package, indented under its layer, and nothing that is not one."""
    readme = (ROOT / "README.md").read_text()
    tour = readme.split("## How it fits together", 1)[1].split("```", 2)[1]
    named = {(len(m.group(1)), m.group(2)) for m in re.finditer(r"^( *)(\w+)/ ", tour, re.M)}
    found = {
        (2 * (len(p.parent.relative_to(ROOT).parts) - 1), p.parent.name)
        for layer in LAYERS
        for p in (ROOT / layer).rglob("__init__.py")
        if len(p.parent.relative_to(ROOT).parts) <= 2
    }
    assert named == found, f"only in the README: {sorted(named - found)}; only in the code: {sorted(found - named)}"


def test_the_store_s_shared_modules_are_the_readme_s():
    """The tour's line of modules shared by every job names exactly the store's top-level modules
    (store/oserrors.py among them); a job's own module belongs in its sub-package."""
    readme = (ROOT / "README.md").read_text()
    tour = readme.split("## How it fits together", 1)[1].split("```", 2)[1]
    line = next(ln for ln in tour.splitlines() if ln.rstrip().endswith("shared by every job"))
    named = set(re.findall(r"(\w+)\.py", line))
    found = {p.stem for p in (ROOT / "store").glob("*.py") if p.name != "__init__.py"}
    assert named == found, f"only in the README: {sorted(named - found)}; only in store/: {sorted(found - named)}"


def sql_uses(tree: ast.AST, package: str) -> list[str]:
    """Where a file writes SQL text, runs a statement, opens or touches a connection, or imports the
    catalog's SQL helpers (which take a connection)."""
    found = [f"writes SQL {s[:60]!r}" for s in strings(tree) if SQL.match(s)]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in CONNECTION:
            found.append(f"line {node.lineno} touches a connection (.{node.attr})")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in RUNS_SQL:
            found.append(f"line {node.lineno} runs SQL (.{node.func.attr})")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "connect"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "sqlite3"
        ):
            found.append(f"line {node.lineno} opens a SQLite connection")
    modules = imported_modules(tree, package)
    for node in ast.walk(tree):  # `from scannlite.store.catalog import sql` names the module as a member
        if isinstance(node, ast.ImportFrom):
            base = next(iter(imported_modules(ast.Module(body=[node], type_ignores=[]), package)))
            modules.update(f"{base}.{alias.name}" for alias in node.names)
    found += [f"imports {m}" for m in sorted(modules) if m == CATALOG_SQL]
    return found


@pytest.mark.parametrize(
    "rel,tree",
    [(r, t) for layer in LAYERS for r, t in sources(layer) if not r.startswith(SQL_HOME)],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_only_the_catalog_runs_sql(rel, tree):
    found = sql_uses(tree, package_of(rel))
    assert not found, f"{rel}: {'; '.join(found)}; SQL belongs in a function of {SQL_HOME}"


def test_the_checks_catch_what_they_look_for():
    """The rules above are not vacuous: each finds its violation in a made-up file."""
    tree = ast.parse(
        'from ..plugin.boundary import run_in\nrun_in("device", "scannlite.plugin.x:f")\n'
        'cat.conn.execute("SELECT 1 FROM items")\nrun_in("tensorflow", "scannlite.plugin.dual_encoder.x:f")\n'
    )
    assert "scannlite.plugin.boundary" in imported_modules(tree, "scannlite.store")
    assert package_of("store/bundle/ondevice/__init__.py") == "scannlite.store.bundle.ondevice"
    assert package_of("store/bundle/export.py") == "scannlite.store.bundle"
    assert any(DUAL_ENCODER.match(s) for s in strings(tree))
    assert any(FUNC_REF.match(s) for s in strings(tree))
    assert any(SQL.match(s) for s in strings(tree))
    uses = sql_uses(tree, "scannlite.store.index")
    assert any("touches a connection (.conn)" in u for u in uses) and any("runs SQL (.execute)" in u for u in uses)
    sneaky = ast.parse(
        "import sqlite3\nfrom scannlite.store.catalog.sql import select_in\n"
        'c = sqlite3.connect("catalog.db")\nrows = cat._conn\nq = f"SELECT {cols} FROM snapshots"\n'
    )
    uses = sql_uses(sneaky, "scannlite.store.index")
    assert len(uses) == 4, uses
    assert sql_uses(ast.parse("from ..catalog import sql\n"), "scannlite.store.index") == [f"imports {CATALOG_SQL}"]
    assert not sql_uses(ast.parse("cat.snapshot_rows()\nwith cat.transaction():\n    pass\n"), "scannlite.store")
    assert not SQL.match("create") and SQL.match("COMMIT") and SQL.match("select id from items")
