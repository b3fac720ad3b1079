"""A writer that acknowledges each committed write on stdout; the crash test kills it at
random moments. Run as: python tests/support/crash_writer.py CATALOG SEED."""

import sys

import numpy as np

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.index.build import build


def main(path: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    cat = Catalog.open(path)
    print("READY", flush=True)
    for step in range(1000):
        batch = f"s{seed}-{step}"
        ids = [f"{batch}-{i}" for i in range(int(rng.integers(50, 400)))]
        vectors = rng.standard_normal((len(ids), cat.dim))
        r = cat.add(ids, vectors, [f"{batch} row {i}" for i in range(len(ids))])
        print(f"ADD {batch} {len(ids)} {r.seq}", flush=True)
        if step % 3 == 1:
            victims = ids[: len(ids) // 4]
            cat.delete(victims)
            print(f"DEL {batch} {len(victims)}", flush=True)
        if step % 2 == 1:
            r = build(cat, full=bool(rng.integers(0, 4) == 0))
            print(f"BUILD {r.version} {r.count}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
