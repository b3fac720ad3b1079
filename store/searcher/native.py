"""ctypes binding of libscannlite (``libscannlite/include/scannlite.h``).

The library is found at ``$SCANNLITE_NATIVE_LIB`` (a path to ``libscannlite.so``) if set, else
at the repository's ``libscannlite/build/libscannlite.so`` (``make native`` builds it; ``make
setup`` does too). Results are bit-identical to the Task Library's (docs/native.md), so tests
and tools can check a bundle without a device process.
"""

from __future__ import annotations

import ctypes
import mmap
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from scannlite.store.errors import ScannliteError

ENV_VAR = "SCANNLITE_NATIVE_LIB"


def _repo_lib() -> Path:
    """libscannlite/build/libscannlite.so of the checkout this module sits in (the nearest parent
    folder holding libscannlite/Makefile), wherever the package is moved within it."""
    here = Path(__file__).resolve()
    for folder in here.parents:
        if (folder / "libscannlite" / "Makefile").is_file():
            return folder / "libscannlite" / "build" / "libscannlite.so"
    return here.parents[2] / "libscannlite" / "build" / "libscannlite.so"


_ERR_SIZE = 512
_STATUS = {1: "argument", 2: "format", 3: "unsupported", 4: "memory", 5: "not found"}
_LOOKUPS = {0: "FLOAT", 1: "INT16", 2: "INT8", -1: "NONE"}


class NativeError(ScannliteError):
    """libscannlite refused a file or a call; ``str(exc)`` is its one-line message, ``status``
    its code (1 argument, 2 format, 3 unsupported, 4 memory, 5 not found)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class NativeLibraryMissing(ScannliteError):
    """libscannlite.so is not built or not where it is looked for."""


class _Info(ctypes.Structure):
    _fields_ = [
        ("dimension", ctypes.c_uint32),
        ("size", ctypes.c_uint64),
        ("num_leaves", ctypes.c_uint32),
        ("leaves_to_search", ctypes.c_uint32),
        ("distance", ctypes.c_int),
        ("lookup", ctypes.c_int),
        ("num_subspaces", ctypes.c_uint32),
    ]


class _Result(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64),
        ("distance", ctypes.c_float),
        ("metadata", ctypes.POINTER(ctypes.c_uint8)),
        ("metadata_size", ctypes.c_size_t),
    ]


# scannlite_result as a numpy record (the same layout), so results are read without a loop of ctypes calls.
_RESULT = np.dtype(
    {
        "names": ["id", "distance", "metadata", "metadata_size"],
        "formats": ["<u8", "<f4", "<u8", "<u8"],
        "offsets": [_Result.id.offset, _Result.distance.offset, _Result.metadata.offset, _Result.metadata_size.offset],
        "itemsize": ctypes.sizeof(_Result),
    }
)


def library_path() -> Path:
    """Where libscannlite.so is looked for (see the module docstring)."""
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else _repo_lib()


_LIB = None
_FUNCTIONS = tuple(  # every function of include/scannlite.h the binding calls
    f"scannlite_{n}"
    for n in "open close get_info peek_info count_items user_info search search_filtered"
    " metadata scratch_size l2_normalize version".split()
)


def _lib():
    global _LIB
    if _LIB is not None:
        return _LIB
    path = library_path()
    if not path.is_file():
        how = (
            f"${ENV_VAR} names {path}, which does not exist"
            if os.environ.get(ENV_VAR)
            else f"{path} does not exist: run `make native` (or set ${ENV_VAR} to a built libscannlite.so)"
        )
        raise NativeLibraryMissing(f"libscannlite is not built: {how}")
    try:
        lib = ctypes.CDLL(str(path))
    except OSError as exc:
        raise NativeLibraryMissing(f"cannot load libscannlite from {path}: {exc}") from None
    # A library built from older sources lacks newer functions: say so, not an AttributeError later.
    if lacking := [name for name in _FUNCTIONS if not hasattr(lib, name)]:
        raise NativeLibraryMissing(f"{path} was built from older sources (it lacks {lacking[0]}): run `make native`")
    c_err = (ctypes.c_char_p, ctypes.c_size_t)
    lib.scannlite_open.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p), *c_err)
    lib.scannlite_close.argtypes = (ctypes.c_void_p,)
    lib.scannlite_close.restype = None
    lib.scannlite_get_info.argtypes = (ctypes.c_void_p, ctypes.POINTER(_Info))
    lib.scannlite_peek_info.argtypes = (ctypes.c_void_p, ctypes.POINTER(_Info))
    lib.scannlite_count_items.argtypes = (ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint64), *c_err)
    lib.scannlite_user_info.argtypes = (
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8)),
        ctypes.POINTER(ctypes.c_size_t),
    )
    # Pointers pass as plain addresses (c_void_p): numpy's .ctypes.data, no conversions per call.
    search_args = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int32, ctypes.c_uint32)
    out_args = (ctypes.c_void_p, ctypes.c_void_p, *c_err)
    lib.scannlite_search.argtypes = (*search_args, *out_args)
    lib.scannlite_search_filtered.argtypes = (*search_args, ctypes.c_void_p, ctypes.c_size_t, *out_args)
    lib.scannlite_metadata.argtypes = (
        ctypes.c_void_p,
        ctypes.c_uint64,
        ctypes.POINTER(ctypes.POINTER(ctypes.c_uint8)),
        ctypes.POINTER(ctypes.c_size_t),
    )
    lib.scannlite_metadata.restype = ctypes.c_int
    lib.scannlite_scratch_size.argtypes = (ctypes.c_void_p, ctypes.c_int32)
    lib.scannlite_scratch_size.restype = ctypes.c_size_t
    lib.scannlite_l2_normalize.argtypes = (ctypes.POINTER(ctypes.c_float), ctypes.c_size_t)
    lib.scannlite_l2_normalize.restype = None
    lib.scannlite_version.restype = ctypes.c_char_p
    for fn in (
        lib.scannlite_open,
        lib.scannlite_get_info,
        lib.scannlite_peek_info,
        lib.scannlite_count_items,
        lib.scannlite_user_info,
        lib.scannlite_search,
        lib.scannlite_search_filtered,
    ):
        fn.restype = ctypes.c_int
    _LIB = lib
    return lib


@dataclass(frozen=True)
class SearchResult:
    """One query's results, nearest first: ``ids`` (int64 ordinals, the ``M_<id>`` keys),
    ``distances`` (float32, as the Task Library reports them) and ``metadata`` (bytes each)."""

    ids: np.ndarray
    distances: np.ndarray
    metadata: list[bytes]


#: Above this k, a search's result buffer is sized by the item count rather than k.
_COUNT_ABOVE_K = 1 << 16


def _advise(mapping: mmap.mmap, advice: str) -> None:
    if hasattr(mmap, advice):
        mapping.madvise(getattr(mmap, advice))


def _vector(query, dim: int | None = None) -> np.ndarray:
    q = np.ascontiguousarray(query, dtype=np.float32)
    if q.ndim != 1:
        raise NativeError(f"a query is one vector; got an array of shape {q.shape}", 1)
    return q


class NativeSearcher:
    """An opened bundle or index: immutable, searchable from any number of threads at once.

    ``source``: a path (mapped read-only for the searcher's lifetime) or a bytes-like buffer
    (``bytes`` is used in place; anything else is copied once, so it cannot change under the
    searcher). Use as a context manager or call :meth:`close`. ``readahead=False`` keeps a
    mapped file's ``MADV_RANDOM`` after opening, so the kernel reads only the pages searches
    touch, not their neighbours: fewer resident pages for slower first visits of a leaf
    (docs/native.md, Memory).
    """

    def __init__(self, source, *, readahead: bool = True) -> None:
        self._lib = _lib()
        self._handle = ctypes.c_void_p()
        self._map = self._array = None
        if isinstance(source, (str, os.PathLike)):
            self.name = os.fspath(source)
            with open(source, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size:
                    # ACCESS_COPY: ctypes needs a writable buffer to take its address; the library only reads.
                    self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
                    # Opening reads a few scattered pages (the footer, the block index, the
                    # config's block): without readahead around each, a cold open reads those
                    # pages, not their neighbours (docs/native.md, Memory).
                    _advise(self._map, "MADV_RANDOM")
            if self._map is not None:
                self._array = (ctypes.c_char * size).from_buffer(self._map)
                pointer = ctypes.addressof(self._array)
            else:
                self._data, pointer = b"", None
        else:
            self.name = "<buffer>"
            self._data = source if isinstance(source, bytes) else bytes(source)
            size = len(self._data)
            pointer = ctypes.cast(ctypes.c_char_p(self._data), ctypes.c_void_p).value if size else None
        err = ctypes.create_string_buffer(_ERR_SIZE)
        status = self._lib.scannlite_open(pointer, size, ctypes.byref(self._handle), err, _ERR_SIZE)
        if self._map is not None and readahead:
            _advise(self._map, "MADV_NORMAL")  # searches read whole leaves: readahead helps again
        if status:
            self._release()
            raise NativeError(f"{self.name}: {err.value.decode('utf-8', 'replace')}", status)
        raw = _Info()
        self._lib.scannlite_peek_info(self._handle, ctypes.byref(raw))
        self.dimension = int(raw.dimension)
        self._size: int | None = None
        self._info = {
            "dimension": raw.dimension,
            "num_leaves": raw.num_leaves,
            "leaves_to_search": raw.leaves_to_search,
            "distance": "dot" if raw.distance == 1 else "l2",
            "lookup": _LOOKUPS.get(raw.lookup, str(raw.lookup)),
            "num_subspaces": raw.num_subspaces,
        }

    @property
    def info(self) -> dict:
        """``dimension``, ``size``, ``num_leaves``, ``leaves_to_search``, ``distance``, ``lookup``,
        ``num_subspaces``. ``size`` counts the items on first access, which locates every leaf
        (about two pages each): opening does not (docs/native.md, Memory)."""
        return {**self._info, "size": self.size}

    @property
    def info_without_size(self) -> dict:
        """:attr:`info` without ``size``: known at open, reads nothing."""
        return dict(self._info)

    @property
    def size(self) -> int:
        """The items in the index (counted once, on first use)."""
        if self._size is None:
            n = ctypes.c_uint64()
            err = ctypes.create_string_buffer(_ERR_SIZE)
            status = self._lib.scannlite_count_items(self._open_handle(), ctypes.byref(n), err, _ERR_SIZE)
            if status:
                raise NativeError(f"{self.name}: {err.value.decode('utf-8', 'replace')}", status)
            self._size = int(n.value)
        return self._size

    # -- lifetime -------------------------------------------------------------------------

    def _release(self) -> None:
        self._array = None
        if self._map is not None:
            self._map.close()
            self._map = None

    def close(self) -> None:
        if self._handle:
            self._lib.scannlite_close(self._handle)
            self._handle = ctypes.c_void_p()
        self._release()

    def __enter__(self) -> NativeSearcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def _open_handle(self):
        if not self._handle:
            raise NativeError(f"{self.name}: the searcher is closed", 1)
        return self._handle

    # -- reading --------------------------------------------------------------------------

    @property
    def user_info(self) -> bytes:
        data, size = ctypes.POINTER(ctypes.c_uint8)(), ctypes.c_size_t()
        status = self._lib.scannlite_user_info(self._open_handle(), ctypes.byref(data), ctypes.byref(size))
        if status:
            raise NativeError(f"{self.name}: cannot read USER_INFO ({_STATUS.get(status, status)} error)", status)
        return ctypes.string_at(data, size.value) if size.value else b""

    def metadata(self, id: int) -> bytes:
        """The metadata bytes of item ``id`` (its ``M_<id>`` value)."""
        data, size = ctypes.POINTER(ctypes.c_uint8)(), ctypes.c_size_t()
        status = self._lib.scannlite_metadata(self._open_handle(), int(id), ctypes.byref(data), ctypes.byref(size))
        if status == 5:
            raise NativeError(f"{self.name}: no item {id} (no key M_{id})", status)
        if status:
            raise NativeError(
                f"{self.name}: cannot read the metadata of item {id} ({_STATUS.get(status, status)} "
                "error: a corrupt block?)",
                status,
            )
        return ctypes.string_at(data, size.value) if size.value else b""

    def scratch_size(self, k: int) -> int:
        """Bytes one search with this k allocates (and frees)."""
        return int(self._lib.scannlite_scratch_size(self._open_handle(), int(k)))

    def search(self, query, k: int, leaves: int | None = None) -> SearchResult:
        """The k nearest items as the Task Library finds them; ``leaves`` overrides the index's
        own leaves_to_search (clamped to the number of leaves)."""
        return self._run(query, k, leaves, None)

    def search_filtered(self, query, k: int, allow, leaves: int | None = None) -> SearchResult:
        """The k nearest items whose ordinal is in ``allow`` among the searched leaves; ``leaves
        = 2**32 - 1`` searches every leaf. Not a Task Library feature."""
        ids = np.ascontiguousarray(allow, dtype=np.uint64).reshape(-1)
        return self._run(query, k, leaves, ids)

    def _run(self, query, k, leaves, allow) -> SearchResult:
        handle = self._open_handle()
        q = _vector(query)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise NativeError(f"k must be an integer, got {k!r}", 1)
        if not 0 < k < 2**31:
            raise NativeError(f"k must be > 0, got {k}", 1)
        if leaves is not None and (
            isinstance(leaves, bool) or not isinstance(leaves, (int, np.integer)) or not 0 <= leaves < 2**32
        ):
            raise NativeError(f"leaves must be an integer in [0, 2**32), got {leaves!r}", 1)
        # At most min(k, size) results come back: a huge k allocates no more than the index
        # holds (counting the items only for such a k: opening did not).
        bound = int(k) if self._size is None and k <= _COUNT_ABOVE_K else min(int(k), self.size)
        results = np.empty(max(1, bound), dtype=_RESULT)
        count = ctypes.c_int32()
        err = ctypes.create_string_buffer(_ERR_SIZE)
        if allow is None:
            status = self._lib.scannlite_search(
                handle,
                q.ctypes.data,
                q.size,
                int(k),
                int(leaves or 0),
                results.ctypes.data,
                ctypes.byref(count),
                err,
                _ERR_SIZE,
            )
        else:
            status = self._lib.scannlite_search_filtered(
                handle,
                q.ctypes.data,
                q.size,
                int(k),
                int(leaves or 0),
                allow.ctypes.data,
                allow.size,
                results.ctypes.data,
                ctypes.byref(count),
                err,
                _ERR_SIZE,
            )
        if status:
            raise NativeError(f"{self.name}: {err.value.decode('utf-8', 'replace')}", status)
        got = results[: count.value]
        ids = got["id"].astype(np.int64)
        dists = got["distance"].copy()
        at = ctypes.string_at
        meta = [at(p, n) if n else b"" for p, n in zip(got["metadata"].tolist(), got["metadata_size"].tolist())]
        return SearchResult(ids, dists, meta)


def l2_normalize(vector) -> np.ndarray:
    """The Task Library's l2_normalize, bit for bit (a new float32 array)."""
    lib = _lib()
    v = np.array(vector, dtype=np.float32, copy=True).reshape(-1)
    lib.scannlite_l2_normalize(v.ctypes.data_as(ctypes.POINTER(ctypes.c_float)), v.size)
    return v


def version() -> str:
    return _lib().scannlite_version().decode()
