"""A full build's memory does not hold the catalog: after ScaNN has trained on its sample,
placing every vector, the recall estimate and the commit together grow the process by less
than the catalog's own float vectors.

Linux does not enforce an RSS limit (RLIMIT_RSS is ignored), so the child process checks the
cap against the peak RSS the kernel records (reset once training is done), and runs under
an address-space limit (RLIMIT_AS) that a build holding the vectors even one and a half
times over cannot fit in. Arrow and glibc are told to hand freed memory back at once, so the
figures are what the build holds, not what an allocator keeps for later.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

# 500,000 vectors and a full ScaNN build (about a minute on 2 cores): not in `make test-quick`.
pytestmark = pytest.mark.slow

N, DIM = 500_000, 128
VECTOR_BYTES = N * DIM * 4  # 256 MB of float32
RSS_CAP = int(0.85 * VECTOR_BYTES)
ADDRESS_CAP = int(1.5 * VECTOR_BYTES)

MAKE = """
import sys
import numpy as np
from scannlite.store.catalog.catalog import Catalog
from scannlite.store.index.config import IndexConfig
from scannlite.store.catalog.synthetic import clustered

n, dim = int(sys.argv[2]), int(sys.argv[3])
with Catalog.create(sys.argv[1], dim, "dot", index=IndexConfig(training_sample_size=10_000, num_leaves=200)) as cat:
    def batches():
        for lo in range(0, n, 50_000):
            x = clustered(min(50_000, n - lo), dim, clusters=100, seed=lo)
            yield cat.make_batch([f"v{i}" for i in range(lo, lo + len(x))], x, first_row=lo)
    cat.add_stream(batches())
"""

BUILD = """
import json, resource, sys
from scannlite.store.index import build as build_module
from scannlite.store.catalog.catalog import Catalog

def status(key):
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(key + ":"))

trained = {}
train_model = build_module.train_model

def train_then_cap(*args, **kwargs):
    out = train_model(*args, **kwargs)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak RSS starts again from here
    trained["rss"] = status("VmRSS")
    cap = status("VmSize") + int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return out

build_module.train_model = train_then_cap
with Catalog.open(sys.argv[1]) as cat:
    result = build_module.build(cat, full=True)
print(json.dumps({"grew": status("VmHWM") - trained["rss"], "count": result.count,
                  "recall": result.recall.recall if result.recall else None}))
"""


def test_a_full_build_grows_by_less_than_the_catalogs_vectors(tmp_path):
    env = {
        **os.environ,
        "MALLOC_ARENA_MAX": "1",
        "MALLOC_MMAP_THRESHOLD_": "65536",
        "ARROW_DEFAULT_MEMORY_POOL": "system",
    }
    cat = tmp_path / "big"
    subprocess.run([sys.executable, "-c", textwrap.dedent(MAKE), str(cat), str(N), str(DIM)], check=True, env=env)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(BUILD), str(cat), str(ADDRESS_CAP)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["count"] == N and got["recall"] and got["recall"][-1] > 0.5
    print(f"peak RSS growth after training {got['grew'] / 2**20:.0f} MiB for {VECTOR_BYTES / 2**20:.0f} MiB of vectors")
    assert got["grew"] < RSS_CAP, f"the build grew by {got['grew'] / 2**20:.0f} MiB, cap {RSS_CAP / 2**20:.0f} MiB"
