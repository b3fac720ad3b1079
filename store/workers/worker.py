"""Entry point of a worker process: ``python -m scannlite.store.workers.worker KIND serve IDLE_SECONDS``.

The first thing a *device* worker does, before any other import, is make TensorFlow
unimportable and select protobuf's pure-Python implementation: tflite-support's Task Library
imports ``tensorflow.tools.docs`` when TensorFlow is installed, and its generated protobuf
code needs the Python implementation on protobuf 5.x. A *tensorflow* worker refuses to load
tflite-support's native modules for the same reason, the other way round.

Then it serves calls from :mod:`scannlite.store.workers.boundary` until its stdin closes or it has
been idle for IDLE_SECONDS (0: no limit): each request and answer is a length-prefixed pickle
on its stdin and on a private copy of its stdout. File descriptor 1 itself is pointed at
stderr, so whatever a library prints goes to the log and never into an answer.
"""

import os
import sys


def start_env(kind: str) -> dict[str, str]:
    """The environment variables a ``kind`` process needs from its very start, for whoever
    starts it (:mod:`scannlite.store.workers.boundary`, or Ray for its actors): protobuf's pure-Python
    implementation for a device process, and TensorFlow's C++ logs quiet unless asked for."""
    env = {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    if kind == "device":
        env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
    return env


def enter(kind: str) -> None:
    """Make this process a ``kind`` process. Also the first call of any process scannlite did
    not start that is to load tflite-support (a Ray actor): it refuses, with one line, a
    process where TensorFlow or protobuf's native implementation is already loaded, because
    that can no longer be undone (set ``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python`` in the
    process's environment before it starts: for Ray, in the runtime environment)."""
    if kind == "device":
        if "google.protobuf" in sys.modules and os.environ.get("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION") != "python":
            raise RuntimeError("protobuf was imported before the device process could select its Python implementation")
        if sys.modules.get("tensorflow") is not None:
            raise RuntimeError("TensorFlow is already loaded in this process; tflite-support cannot share it")
        os.environ["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = "python"
        sys.modules["tensorflow"] = None  # type: ignore[assignment]
    elif kind == "tensorflow":
        for native in (
            "tflite_support.task",
            "tensorflow_lite_support.python.task",
            "tensorflow_lite_support.scann_ondevice.cc.python",
        ):
            sys.modules[native] = None  # type: ignore[assignment]
    else:
        raise SystemExit(f"unknown process kind {kind!r}")


def _call(func: str, args, kwargs):
    import importlib

    module_name, _, attr = func.partition(":")
    try:
        return True, getattr(importlib.import_module(module_name), attr)(*args, **kwargs)
    except Exception as exc:  # carried back to the caller as one line
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return False, message


def serve(idle: float) -> int:
    import pickle
    import select

    from scannlite.store.workers.boundary import (  # only now: nothing may load before enter
        HEADER,
        _read_exact,
        _write_message,
    )

    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    requests = os.fdopen(0, "rb")
    while True:
        if idle > 0 and not select.select([requests], [], [], idle)[0]:
            return 0  # idle too long: give the memory back
        try:
            (size,) = HEADER.unpack(_read_exact(requests, HEADER.size))
            func, args, kwargs = pickle.loads(_read_exact(requests, size))
        except EOFError:
            return 0  # the caller went away
        result = _call(func, args, kwargs)
        del args, kwargs  # the inputs (an index's codes, say) go before the answer is pickled
        try:
            data = pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            data = pickle.dumps((False, f"the result of {func} cannot be sent back: {exc}"))
        del result
        _write_message(answers, data)
        del data


def main(argv: list[str]) -> int:
    kind, mode, idle = argv
    enter(kind)
    if mode != "serve":
        raise SystemExit(f"unknown worker mode {mode!r}")
    return serve(float(idle))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
