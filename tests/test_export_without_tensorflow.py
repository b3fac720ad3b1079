"""Export and verification must work where TensorFlow is not installed.

A ``tensorflow`` module that refuses to import is put first on the path of the exporting
process and of every worker it starts; the whole export, verification included, still works.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.device

SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    from pathlib import Path
    from scannlite.store.catalog.catalog import Catalog
    from scannlite.store.index.build import build
    from scannlite.store.bundle.export import export
    from scannlite.plugin.device.processes import DeviceProcesses
    from scannlite.store.catalog.synthetic import clustered
    cat = Catalog.create(sys.argv[1], 16)
    cat.add([f"v{i}" for i in range(600)], clustered(600, 16, seed=1), [f"text {i}" for i in range(600)])
    build(cat)
    r = export(cat, device=DeviceProcesses(), out=Path(sys.argv[2]), embedder=Path(sys.argv[3]))
    print(r.manifest["parity"]["queries"], "tensorflow" in sys.modules and sys.modules["tensorflow"] is not None)
""")


@pytest.mark.slow
def test_export_and_verify_with_tensorflow_unimportable(tmp_path, fixtures_dir):
    blocker = tmp_path / "no_tf"
    blocker.mkdir()
    (blocker / "tensorflow.py").write_text("raise ImportError('TensorFlow is not installed here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            str(tmp_path / "c"),
            str(tmp_path / "b.tflite"),
            str(fixtures_dir / "regex_one_embedding_with_metadata.tflite"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    queries, tf_loaded = proc.stdout.split()
    assert int(queries) > 0 and tf_loaded == "False"
    assert json.loads((tmp_path / "b.manifest.json").read_text())["verified"] is True
