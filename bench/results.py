"""Benchmark results as JSON: what every study writes, and what ``python -m bench.render`` reads.

A study never writes Markdown. It writes one JSON file per run (``bench/results/<doc>/<study>.json``,
committed beside the docs) holding its tables, targets and notes as measured, the exact command
that produced them, the date and the machine; ``bench.render`` turns the files into docs/, so the
docs cannot drift from the data (tests/test_bench_render.py).

Files here are read as untrusted input: a malformed one stops the renderer with one line naming
the file and the field, and nothing is written.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from . import ROOT

FORMAT = "scannlite-bench/1"
RESULTS = ROOT / "bench" / "results"
DOC_FILE = "_doc.json"  # per document: verbatim blocks written by hand (intro, closing), each with its source


class ResultError(ValueError):
    """A results file that cannot be rendered: the message names the file and the cause."""


def machine_facts() -> tuple[dict, dict]:
    """(machine, versions) of this process's machine, as a run records them."""
    from .report import machine, versions

    m = machine()
    m.pop("load", None)
    return m, versions()


def stamped(out: dict, started: datetime, command: str | None = None) -> dict:
    """``out`` with what every raw study's results file records of its run (bench/results/raw/): its command (when
    given), the date it started (UTC) and the machine and versions it ran on."""
    m, v = machine_facts()
    if command is not None:
        out["command"] = command
    out.update({"date": started.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": m, "versions": v})
    return out


def table_json(table, command: str) -> dict:
    return {
        "title": table.title,
        "columns": list(table.columns),
        "rows": [list(r) for r in table.rows],
        "how": list(table.how),
        "command": command,
    }


def section_json(
    section,
    study: str,
    *,
    started: datetime,
    load: tuple[float, float | None] | None,
    data: list[str] = (),
    images: list[dict] = (),
) -> dict:
    """One study's run (a :class:`bench.report.Section`) as the JSON the renderer reads."""
    m, v = machine_facts()
    return {
        "format": FORMAT,
        "study": study,
        "title": section.name,
        "command": section.command,
        "date": started.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(section.seconds, 1),
        "machine": m,
        "versions": v,
        "load": [None if x is None else round(x, 2) for x in load] if load else None,
        "source": "measured",
        "data": [*section.data, *data],
        "images": list(images),
        "tables": [table_json(t, section.command) for t in section.tables],
        "targets": [
            {"target": t, "measured": mv, "met": bool(ok), "command": section.command} for t, mv, ok in section.targets
        ],
        "notes": list(section.notes),
        "blocks": [],
        "figures": section.figures,
        "curves": {k: {str(x): y for x, y in c.items()} for k, c in section.curves.items()},
    }


def write(path: Path, obj: dict) -> Path:
    """Write one results file atomically (a temporary file renamed over it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=1, ensure_ascii=False, default=_plain) + "\n"
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _plain(x):
    try:
        import numpy as np

        if isinstance(x, np.generic):
            return x.item()
        if isinstance(x, np.ndarray):
            return x.tolist()
    except ImportError:  # pragma: no cover - numpy is a dependency
        pass
    if isinstance(x, (tuple, set)):
        return list(x)
    raise TypeError(f"not JSON: {type(x).__name__}")


# ---- reading (untrusted) -------------------------------------------------------------------


def _need(cond: bool, where: str, what: str) -> None:
    if not cond:
        raise ResultError(f"{where}: {what}")


def _strings(value, where: str, field: str) -> list[str]:
    _need(
        isinstance(value, list) and all(isinstance(s, str) for s in value), where, f"{field} must be a list of strings"
    )
    return value


def _command(value, where: str) -> str:
    _need(
        isinstance(value, str) and " -m bench." in value,
        where,
        "command must be the command that produced the figures (`... -m bench.<study> ...`)",
    )
    return value


def check(obj, where: str) -> dict:
    """Validate one study's results (``where`` names it in errors); returns it unchanged."""
    _need(isinstance(obj, dict), where, "not a JSON object")
    _need(obj.get("format") == FORMAT, where, f"format must be {FORMAT!r}, got {obj.get('format')!r}")
    for key in ("study", "title", "date", "source"):
        _need(isinstance(obj.get(key), str) and obj[key], where, f"{key} must be a non-empty string")
    _command(obj.get("command"), where)
    _need(
        obj.get("seconds") is None or (isinstance(obj["seconds"], (int, float)) and obj["seconds"] >= 0),
        where,
        "seconds must be a number >= 0 (or null: not recorded)",
    )
    for key in ("machine", "versions", "figures"):
        _need(obj.get(key) is None or isinstance(obj[key], dict), where, f"{key} must be an object or null")
    m = obj.get("machine")
    _need(
        m is None or (isinstance(m.get("cpu"), str) and isinstance(m.get("cores"), int)),
        where,
        "machine needs cpu (a string) and cores (an integer)",
    )
    load = obj.get("load")
    _need(
        load is None
        or (
            isinstance(load, list)
            and len(load) == 2
            and isinstance(load[0], (int, float))
            and (load[1] is None or isinstance(load[1], (int, float)))
        ),
        where,
        "load must be [start, end] (end may be null) or null",
    )
    for key in ("data", "notes"):
        _strings(obj.get(key, []), where, key)
    for i, img in enumerate(obj.get("images", [])):
        _need(
            isinstance(img, dict) and all(isinstance(img.get(k), str) for k in ("file", "alt", "caption")),
            where,
            f"images[{i}] needs file, alt and caption strings",
        )
    _need(isinstance(obj.get("tables"), list), where, "tables must be a list")
    for i, t in enumerate(obj["tables"]):
        w = f"{where}: tables[{i}]"
        _need(isinstance(t, dict) and isinstance(t.get("title"), str), w, "needs a title")
        cols = _strings(t.get("columns"), w, "columns")
        _need(isinstance(t.get("rows"), list), w, "rows must be a list")
        for j, r in enumerate(t["rows"]):
            _need(
                len(_strings(r, w, f"rows[{j}]")) == len(cols),
                w,
                f"rows[{j}] has {len(r)} cells for {len(cols)} columns",
            )
            _need(not any("\n" in c for c in r), w, f"rows[{j}]: a cell holds a line break")
        _strings(t.get("how", []), w, "how")
        _command(t.get("command"), w)
    _need(isinstance(obj.get("targets", []), list), where, "targets must be a list")
    for i, t in enumerate(obj.get("targets", [])):
        w = f"{where}: targets[{i}]"
        _need(
            isinstance(t, dict)
            and isinstance(t.get("target"), str)
            and isinstance(t.get("measured"), str)
            and isinstance(t.get("met"), bool),
            w,
            "needs target, measured (strings) and met (true/false)",
        )
        _command(t.get("command"), w)
    blocks(obj.get("blocks", []), where)
    return obj


def blocks(value, where: str) -> list[dict]:
    """Verbatim Markdown blocks (hand-written text, or figures not carried as data), each with its source."""
    _need(isinstance(value, list), where, "blocks must be a list")
    for i, b in enumerate(value):
        _need(
            isinstance(b, dict) and isinstance(b.get("text"), str) and isinstance(b.get("source"), str) and b["source"],
            where,
            f"blocks[{i}] needs text and a non-empty source (who or what wrote it)",
        )
        _need(b.get("at", "end") in ("head", "end"), where, f"blocks[{i}]: at must be 'head' or 'end'")
    return value


def load(path: Path) -> dict:
    """Read and validate one results file."""
    try:
        obj = json.loads(Path(path).read_text())
    except OSError as e:
        raise ResultError(f"{path}: cannot read: {e.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultError(f"{path}: not valid JSON: {e}") from None
    if Path(path).name == DOC_FILE:
        _need(isinstance(obj, dict), str(path), "not a JSON object")
        for key in ("intro", "closing"):
            blocks(obj.get(key, []), f"{path}: {key}")
        return obj
    return check(obj, str(path))


def load_dir(folder: Path) -> tuple[dict, list[dict]]:
    """(the document's hand-written blocks, its studies' results) from one results folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ResultError(f"{folder}: no such results folder")
    doc = load(folder / DOC_FILE) if (folder / DOC_FILE).is_file() else {}
    runs = [load(p) for p in sorted(folder.glob("*.json")) if p.name != DOC_FILE]
    if not runs:
        raise ResultError(f"{folder}: no results files (*.json) to render")
    return doc, runs
