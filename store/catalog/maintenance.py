"""Keeping a catalog honest and small: ``check``, ``compact`` and ``gc``.

* ``check`` recomputes what SQLite recorded: every segment file present with its sha256 and
  row count, item rows pointing inside their segments, every snapshot's item count and digest,
  and a code under the snapshot's model for every item it holds.
* ``compact`` drops item rows no snapshot and no current state can see ("dead" rows: replaced
  or deleted before the oldest kept snapshot) and rewrites the segments that held them, or
  that are small, into new segments. Old files stay until ``gc``: a reader that began before
  the compaction may still be reading them.
* ``gc`` optionally forgets all but the newest N snapshots, drops partition models and codes no
  kept snapshot uses, and deletes files no row references (including files a crashed writer
  left unpublished).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow.parquet as pq

from scannlite.store.catalog.catalog import Catalog, visible
from scannlite.store.catalog.damage import reports_damage
from scannlite.store.catalog.segments import SEGMENT_DIR, write_segment
from scannlite.store.catalog.sql import execute_in
from scannlite.store.digests import sha256_file
from scannlite.store.errors import InvalidInput, one_line
from scannlite.store.index.stored import items_digest
from scannlite.store.oserrors import unlinked_on_failure
from scannlite.store.progress import SILENT, Progress

SMALL_SEGMENT_ROWS = 4096


@dataclass
class CheckReport:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems


@reports_damage(CheckReport)  # a damaged catalog.db is a problem found, not a traceback
def check(cat: Catalog, progress: Progress = SILENT) -> CheckReport:
    rep = CheckReport()
    with cat.reading():
        segs = cat._conn.execute("SELECT segment_id, path, rows, bytes, sha256 FROM segments").fetchall()
        with progress.task("checking segment files", total=max(len(segs), 1)) as advance:
            for _seg_id, rel, rows, size, digest in segs:
                path = cat.path / rel
                if not path.is_file():
                    rep.problems.append(f"segment {rel} is missing")
                elif path.stat().st_size != size:
                    rep.problems.append(f"segment {rel} is {path.stat().st_size} bytes, {size} were recorded")
                elif sha256_file(path) != digest:
                    rep.problems.append(f"segment {rel} does not match its recorded sha256")
                else:
                    try:
                        n = pq.read_metadata(path).num_rows
                        if n != rows:
                            rep.problems.append(f"segment {rel} holds {n} rows, {rows} were recorded")
                    except Exception as exc:  # a corrupt footer
                        rep.problems.append(f"segment {rel} is unreadable: {one_line(exc)}")
                advance(1)
        bad_rows = cat._conn.execute(
            "SELECT COUNT(*) FROM items i LEFT JOIN segments s ON s.segment_id = i.segment_id "
            "WHERE s.segment_id IS NULL OR i.segment_row < 0 OR i.segment_row >= s.rows"
        ).fetchone()[0]
        if bad_rows:
            rep.problems.append(f"{bad_rows} item rows point outside their segments")
        dup = cat._conn.execute(
            "SELECT id FROM items WHERE removed_seq IS NULL GROUP BY id HAVING COUNT(*) > 1 LIMIT 1"
        ).fetchone()
        if dup:
            rep.problems.append(f"id {dup[0]!r} is live twice")
        snaps = cat._conn.execute("SELECT version, seq, model_id, count, items_digest FROM snapshots").fetchall()
        for version, seq, model_id, count, digest in snaps:
            items = np.fromiter(
                (r[0] for r in cat._conn.execute(f"SELECT item FROM items WHERE {visible()}", {"seq": seq})),
                dtype=np.int64,
            )
            if len(items) != count:
                rep.problems.append(f"snapshot {version} records {count} items but {len(items)} are visible")
            elif items_digest(items) != digest:
                rep.problems.append(f"snapshot {version}'s items differ from the recorded digest")
            if model_id is not None:
                coded = cat._conn.execute(
                    f"SELECT COUNT(*) FROM items JOIN codes c ON c.item = items.item AND c.model_id = :m WHERE {visible()}",
                    {"m": model_id, "seq": seq},
                ).fetchone()[0]
                if coded != len(items):
                    rep.problems.append(
                        f"snapshot {version}: {len(items) - coded} items have no code under model {model_id}"
                    )
                _check_model(cat, model_id, rep)
            elif count:
                rep.problems.append(f"snapshot {version} holds {count} items but no partition model")
        known = {r[0] for r in segs}
        on_disk = {f"{SEGMENT_DIR}/{p.name}" for p in (cat.path / SEGMENT_DIR).glob("*.parquet")}
        stray = on_disk - {r[1] for r in segs}
        if stray:
            rep.warnings.append(
                f"{len(stray)} segment files are not referenced (left by a crash or a compaction); "
                "`scannlite gc` reclaims them"
            )
        rep.checked = {"segments": len(known), "snapshots": len(snaps), "live_items": cat.count()}
    return rep


def _check_model(cat: Catalog, model_id: int, rep: CheckReport) -> None:
    row = cat._conn.execute(
        "SELECT kind, dim, num_leaves, dims_per_block, length(centroids), length(codebooks) "
        "FROM models WHERE model_id = ?",
        (model_id,),
    ).fetchone()
    if row is None:
        rep.problems.append(f"model {model_id} is missing")
        return
    kind, dim, leaves, dpb, cbytes, bbytes = row
    if cbytes != 4 * leaves * dim:
        rep.problems.append(f"model {model_id}: centroid blob has {cbytes} bytes, expected {4 * leaves * dim}")
    if kind == "ah":
        if bbytes != 4 * 256 * dim:
            rep.problems.append(f"model {model_id}: codebook blob has {bbytes} bytes, expected {4 * 256 * dim}")
        subspaces = -(-dim // dpb)
        wrong = cat._conn.execute(
            "SELECT COUNT(*) FROM codes WHERE model_id = ? AND (length(code) != ? OR leaf < 0 OR leaf >= ?)",
            (model_id, subspaces, leaves),
        ).fetchone()[0]
        if wrong:
            rep.problems.append(f"model {model_id}: {wrong} codes have the wrong size or leaf")


def _kept_seqs(cat: Catalog) -> list[int]:
    return [r[0] for r in cat._conn.execute("SELECT seq FROM snapshots")]


def compact(cat: Catalog, progress: Progress = SILENT) -> dict:
    with cat.writing():
        seqs = _kept_seqs(cat)
        seen_by_snapshot = " OR ".join(f"(added_seq <= {s} AND removed_seq > {s})" for s in seqs) or "0"
        dead = [
            r[0]
            for r in cat._conn.execute(
                f"SELECT item FROM items WHERE removed_seq IS NOT NULL AND NOT ({seen_by_snapshot})"
            )
        ]
        segs = cat._conn.execute("SELECT segment_id, path, rows FROM segments").fetchall()
        dead_set = set(dead)
        per_seg: dict[int, list[int]] = {}
        for item, seg in cat._conn.execute("SELECT item, segment_id FROM items"):
            if item not in dead_set:
                per_seg.setdefault(seg, []).append(item)
        rewrite = [s for s in segs if len(per_seg.get(s[0], [])) < s[2] or s[2] < SMALL_SEGMENT_ROWS]
        if len(rewrite) <= 1 and not dead and all(len(per_seg.get(s[0], [])) == s[2] for s in rewrite):
            return {"dead_rows": 0, "segments_rewritten": 0, "seq": None}
        keep_items = [i for s in rewrite for i in sorted(per_seg.get(s[0], []))]
        with progress.task(f"rewriting {len(rewrite)} segments", total=max(len(keep_items), 1)) as advance:
            new = None
            if keep_items:
                vectors = cat.vectors_for(np.asarray(keep_items, dtype=np.int64))
                ids = dict(cat._conn.execute("SELECT item, id FROM items"))
                new = write_segment(cat.path, [ids[i] for i in keep_items], vectors)
            advance(max(len(keep_items), 1))
        # a compaction that cannot commit leaves no new segment
        with unlinked_on_failure([cat.path / new.path] if new is not None else []), cat.transaction():
            seq = cat.new_commit("compact", {"dead_rows": len(dead), "segments_rewritten": len(rewrite)})
            if new is not None:
                seg_id = cat._conn.execute(
                    "INSERT INTO segments(path, rows, bytes, sha256, created_seq) VALUES (?, ?, ?, ?, ?)",
                    (new.path, new.rows, new.bytes, new.sha256, seq),
                ).lastrowid
                cat._conn.executemany(
                    "UPDATE items SET segment_id = ?, segment_row = ? WHERE item = ?",
                    [(seg_id, row, item) for row, item in enumerate(keep_items)],
                )
            execute_in(cat._conn, "DELETE FROM codes WHERE item IN ({marks})", dead)
            execute_in(cat._conn, "DELETE FROM items WHERE item IN ({marks})", dead)
            for seg_id, _, _ in rewrite:
                cat._conn.execute("DELETE FROM segments WHERE segment_id = ?", (seg_id,))
        return {"dead_rows": len(dead), "segments_rewritten": len(rewrite), "seq": seq, "rows_kept": len(keep_items)}


def gc(cat: Catalog, keep: int | None = None) -> dict:
    if keep is not None and keep < 1:
        raise InvalidInput("--keep must be at least 1 (the newest snapshot is always kept)")
    with cat.writing():
        dropped_snapshots: list[int] = []
        with cat.transaction():
            if keep is not None:
                dropped_snapshots = [
                    r[0]
                    for r in cat._conn.execute(
                        "SELECT version FROM snapshots ORDER BY version DESC LIMIT -1 OFFSET ?", (keep,)
                    )
                ]
                for v in dropped_snapshots:
                    cat._conn.execute("DELETE FROM exports WHERE version = ?", (v,))
                    cat._conn.execute("DELETE FROM snapshots WHERE version = ?", (v,))
            used = {r[0] for r in cat._conn.execute("SELECT model_id FROM snapshots WHERE model_id IS NOT NULL")}
            unused = [r[0] for r in cat._conn.execute("SELECT model_id FROM models") if r[0] not in used]
            for m in unused:
                cat._conn.execute("DELETE FROM codes WHERE model_id = ?", (m,))
                cat._conn.execute("DELETE FROM models WHERE model_id = ?", (m,))
            if dropped_snapshots or unused:
                cat.new_commit("gc", {"dropped_snapshots": dropped_snapshots, "dropped_models": unused})
        referenced = {r[0] for r in cat._conn.execute("SELECT path FROM segments")}
        removed = []
        for path in sorted((cat.path / SEGMENT_DIR).glob("*")):
            rel = f"{SEGMENT_DIR}/{path.name}"
            if rel not in referenced and path.is_file():
                path.unlink()
                removed.append(rel)
        for stale in cat.path.glob(f".{'catalog.db'}.init-*"):
            stale.unlink(missing_ok=True)
        return {"dropped_snapshots": dropped_snapshots, "dropped_models": unused, "files_removed": len(removed)}
