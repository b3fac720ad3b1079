"""Entry point of a worker process: ``python -m scannlite.store.worker KIND REQUEST RESPONSE``.

The first thing a *device* worker does, before any other import, is make TensorFlow
unimportable and select protobuf's pure-Python implementation: tflite-support's Task Library
imports ``tensorflow.tools.docs`` when TensorFlow is installed, and its generated protobuf
code needs the Python implementation on protobuf 5.x. A *tensorflow* worker refuses to load
tflite-support's native modules for the same reason, the other way round.
"""
import os
import sys


def _enter(kind: str) -> None:
    if kind == "device":
        if "google.protobuf" in sys.modules and os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION") != "python":
            raise RuntimeError("protobuf was imported before the device process could select its Python implementation")
        os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    elif kind == "tensorflow":
        for native in ("tflite_support.task", "tensorflow_lite_support.python.task",
                       "tensorflow_lite_support.scann_ondevice.cc.python"):
            sys.modules[native] = None  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown process kind {kind!r}")


def main(argv: list[str]) -> int:
    kind, request, response = argv
    _enter(kind)
    import importlib
    import pickle

    with open(request, "rb") as f:
        func, args, kwargs = pickle.load(f)
    module_name, _, attr = func.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
        result = (True, fn(*args, **kwargs))
    except Exception as exc:  # carried back to the caller as one line
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        result = (False, message)
    from scannlite.store.atomic import atomic_open  # only now: nothing may load before _enter

    with atomic_open(response) as f:  # a worker killed mid-write leaves no response at all
        pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
