"""build's three steps one by one: planning reads, computing writes nothing, committing
publishes exactly what was computed in one transaction."""

import numpy as np

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.catalog.synthetic import clustered
from scannlite.store.index import snapshot
from scannlite.store.index.build import build, commit_build, compute_build, plan_build
from scannlite.store.index.config import IndexConfig
from tests.support.catalog_helpers import ids_for

DIM = 16


VECTORS = clustered(5020, DIM, clusters=40, seed=1)


def catalog(tmp_path):
    cat = Catalog.create(tmp_path / "c", DIM, index=IndexConfig(num_leaves=16, leaves_to_search=2))
    cat.add(ids_for("a", 5000), VECTORS[:5000])
    return cat


def test_plan_then_compute_write_nothing_and_commit_publishes_it(tmp_path):
    cat = catalog(tmp_path)
    head = cat.head_seq
    with cat.writing():
        plan = plan_build(cat)
        assert not plan.up_to_date and plan.last is None and len(plan.live) == 5000
        work = compute_build(cat, plan)
        assert work.retrain and work.reasons == ["no partition model yet"] and len(work.rows) == 5000
        assert cat.head_seq == head and snapshot.list_snapshots(cat) == []  # nothing written yet
        result = commit_build(cat, plan, work, started=0.0)
    assert result.version == 1 and result.count == 5000 and result.encoded == 5000
    assert snapshot.get_snapshot(cat, None).count == 5000


def test_incremental_work_encodes_only_the_new_items(tmp_path):
    cat = catalog(tmp_path)
    build(cat)
    with cat.writing():
        assert plan_build(cat).up_to_date
    cat.add(ids_for("n", 20), VECTORS[5000:])  # same distribution: no reason to retrain
    with cat.writing():
        plan = plan_build(cat)
        work = compute_build(cat, plan)
    assert not work.retrain and len(work.rows) == 20 and work.model_id == plan.last[2]
    new_items = {row[1] for row in work.rows}
    assert new_items == set(np.setdiff1d(plan.live, snapshot.load_snapshot(cat).items).tolist())


def test_a_config_change_is_planned_and_forces_a_new_snapshot(tmp_path):
    cat = catalog(tmp_path)
    build(cat)
    with cat.writing():
        plan = plan_build(cat, changes={"leaves_to_search": 3})
    assert plan.config_changed and not plan.up_to_date
    assert build(cat, changes={"leaves_to_search": 3}).leaves_to_search == 3
