"""The real-embedding benchmark set: English prose from the installed packages, embedded by MiniLM.

``python -m bench.real_text`` makes it (or finds it in the cache) and prints what it holds;
``--quick`` makes the small smoke-run set. Benchmark data, not a test fixture: nothing of it
is committed.

**Text** (nothing synthetic): the prose already on the machine, read as text, never imported:
docstrings (:mod:`ast`) and whole-line ``#`` comments of every ``.py`` file, ``/* */`` and
``//`` comments of the C/C++ headers packages ship (TensorFlow's ``include/`` holds most of
them), and prose files (``*.rst``, ``*.md``, ``*.txt``, the long description in each
``*.dist-info/METADATA``; license files left out), under the virtual environment's
``site-packages`` (pinned by ``uv.lock``) and the Python standard library (tests left out).
``/usr/share/doc`` is not read: it depends on the machine's Debian packages. The full set
finds about 225,000 distinct sentences (median 12 words) in about 17,700 files; 59% of
them come from TensorFlow's Python and headers, 6% from the stdlib, the rest from about 200
other packages (matplotlib, keras, numpy, pyarrow, pip, ... each 2-4%).

**Cleaning** (:func:`paragraphs`, :func:`keep`): text is read line by line into paragraphs;
code and markup end a paragraph and are dropped (doctest blocks, literal blocks after
``::``, fenced or, in prose files, indented blocks, reST directives, section underlines and
headers, tables, lines that look like Python); a field-list item (``:param x: ...``,
``x (int): ...``) keeps its text without the name; reST/Markdown markup is reduced to its
words (``:func:`name``` -> ``name``). Paragraphs are split into sentences, and a sentence
is kept if it has 6 to 60 words and 30 to 300 characters, starts with a capital letter,
ends with ``.``, ``!`` or ``?``, is at least 75% letters and spaces, is ASCII but for at
most two characters, and has no code-like token (``()``, ``==``, ``->``, ``::``, braces,
URLs, backslashes, ``a.b(``, ``x[``). Exact duplicates (lowercased, whitespace collapsed)
are dropped, keeping the first in sorted file order.

**Split** (deterministic): the distinct sentences are ranked by a hash of their text seeded
with :data:`SEED` (:func:`draw_order`); the first ``Spec.queries`` (1,000) are the held-out
queries, the next ``Spec.catalog`` (120,000) the catalog, ids ``t000000``... A new package
in the environment adds only its own sentences to the draw. The project's own metadata (its
README) is not read: it changes with every edit. No query sentence is in the
catalog (a near-duplicate can be: the same sentence reworded in two packages is real data).

**Vectors**: all-MiniLM-L6-v2 as the project ships it
(``scannlite.plugin.dual_encoder.minilm.sentence_vectors``: the Task Library's WordPiece, mean
pooling, L2-normalised, 384-d) in one ``tensorflow`` worker process started through
``scannlite.store.workers.boundary.run_in`` (:func:`embed_job`), which reports each finished part of
:data:`PART` texts through a progress file that the main process draws with rich; parts are
saved as they finish, so an interrupted run resumes. ``seq_len`` :data:`SEQ_LEN`: it cuts
0.5% of the sentences (the median is 19 tokens with ``[CLS]``/``[SEP]``, the 90th percentile
36) where 32 would cut 14%. Texts go in order of token length so each batch is padded only
to its own length (rounded up to 8), and the model runs under ``tf.function``: in a side
measurement on 2,048 of these sentences that made 225 texts/s against 49/s for batches
padded to 64 in eager mode. The full set took 16.5 minutes here (2 cores shared with other
work, load 2-3); the quick set about a minute.

**Cache** (``scannlite.plugin.dual_encoder.cache.cache_dir()/real-text/``):
``corpus-<spec>-<key>.json`` (the cleaned, split text, keyed by the rules, the spec and the
name and size of every source file: reinstalling the same versions keeps it) and ``vectors-<spec>-<text hash>-L<seq_len>-w<weights
size>.npz`` (ids, texts, their source files, vectors, query texts, query vectors, and how the
run that made it went). A sentence found in any earlier vectors file with the same
``seq_len`` and weights is not embedded again. A re-run takes about 5 s (listing and
stat-ing the source files).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: Bump when the cleaning or split rules change (it is part of every cache key).
RULES_VERSION = 2
SEED = 20240808
SEQ_LEN = 64
BATCH = 128
PART = 4096  # texts per saved part of the embedding job (its progress and resume unit)
MODEL = "all-MiniLM-L6-v2 (scannlite.plugin.dual_encoder.minilm)"


@dataclass(frozen=True)
class Spec:
    """Which text, how much of it, and how it is embedded."""

    name: str = "full"
    roots: tuple[str, ...] = ("site-packages", "stdlib")
    catalog: int = 120_000  # at most: every distinct sentence past the queries, up to this
    min_catalog: int = 100_000
    queries: int = 1_000
    seq_len: int = SEQ_LEN
    batch: int = BATCH


FULL = Spec()
#: The smoke run: the standard library's text only (read in seconds), 5,000 + 100 sentences.
QUICK = Spec(name="quick", roots=("stdlib",), catalog=5_000, min_catalog=5_000, queries=100)


MIN_WORDS, MAX_WORDS = 6, 60
MIN_CHARS, MAX_CHARS = 30, 300


# ---- reading the sources ---------------------------------------------------------------------


def roots() -> dict[str, Path]:
    """The folders read, by the label their files carry in ``sources``."""
    paths = sysconfig.get_paths()
    return {"site-packages": Path(paths["purelib"]), "stdlib": Path(paths["stdlib"])}


def _wanted(path: Path, label: str, root: Path) -> bool:
    name = path.name
    rel = path.relative_to(root).parts
    if label == "stdlib" and (
        rel[0] in ("site-packages", "dist-packages", "test", "idlelib", "lib2to3") or "tests" in rel or "test" in rel
    ):
        return False  # another environment's packages, or test data
    if name.endswith((".py", ".h", ".hpp")):
        return True
    if label == "site-packages" and rel[0].startswith(("scannlite", "__editable__")):
        return False  # the project's own README, reinstalled with every edit: the set would never settle
    if name.endswith((".rst", ".md", ".txt")) or (name == "METADATA" and path.parent.name.endswith(".dist-info")):
        return not _skip_prose_file(path)
    return False


def source_files(labels: tuple[str, ...] = FULL.roots) -> list[tuple[str, Path]]:
    """Every source file as (label/relative path, path), sorted by the label."""
    out = []
    for label, root in roots().items():
        if label not in labels:
            continue
        for path in root.rglob("*"):
            if path.is_file() and _wanted(path, label, root):
                out.append((f"{label}/{path.relative_to(root)}", path))
    return sorted(out)


def _skip_prose_file(path: Path) -> bool:
    """License texts and machine-made text files (word lists, record files) are not prose."""
    name = path.name.lower()
    if any(w in name for w in ("licen", "copying", "notice", "copyright", "authors", "patents", "third_party")):
        return True
    if name.upper().startswith(
        (
            "RECORD",
            "TOP_LEVEL",
            "ENTRY_POINTS",
            "REQUIRES",
            "SOURCES",
            "DEPENDENCY",
            "NAMESPACE_PACKAGES",
            "INSTALLER",
            "REQUESTED",
            "WHEEL",
        )
    ):
        return True
    return any("licen" in part.lower() for part in path.parent.parts[-2:])


def docstrings(source: str) -> list[str]:
    """Module, class and function docstrings of a Python file, in source order."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                out.append((getattr(node, "lineno", 0), doc))
    return [d for _, d in sorted(out, key=lambda t: t[0])]


def _metadata_body(text: str) -> str:
    """A wheel's METADATA: the long description after the header block."""
    head, sep, body = text.partition("\n\n")
    return body if sep else ""


# ---- cleaning --------------------------------------------------------------------------------

_ROLE = re.compile(r":[\w:.-]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")  # :func:`~a.b <x>` -> a.b
_LINK = re.compile(r"`([^`<]+?)\s*<[^>]+>`_+")  # `text <url>`_ -> text
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [text](url) -> text
_TICKS = re.compile(r"`+([^`]*)`+")
_EMPH = re.compile(r"(\*\*|\*|__)(\S[^*]*?\S|\S)\1")
_SENT_END = re.compile(r"(?<=[.!?])[\"')\]]?\s+(?=[\"'(\[]?[A-Z])")
_ABBREV = re.compile(r"\b(e\.g|i\.e|etc|vs|cf|approx|resp|Mr|Dr|No|Fig|Eq|al|incl)\.$", re.IGNORECASE)
_CODEY = re.compile(r"(\(\)|==|!=|->|=>|::|\{|\}|://|www\.|\\|#\s|\$|;\s*$|\w\.\w+\(|[\w\]]\[|\bdef\b|\w\(\w*=)")
_CODE_LINE = re.compile(
    r"^\s*(>>>|\.\.\.|\.\. |\$ |%|#|@|[-=~^\"'`*+#_]{3,}\s*$|\||\+[-=+]+|[A-Za-z_][\w.]*\s*=[^=]|"
    r"def \w+\(|class \w+[(:]|import [\w.]+$|from [\w.]+ import|(if|for|while) .*:$|print\(|return \S+$)"
)


def _clean_markup(text: str) -> str:
    text = _ROLE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _TICKS.sub(r"\1", text)
    text = _EMPH.sub(r"\2", text)
    return re.sub(r"\s+", " ", text).strip()


_FIELD = re.compile(r"^(?::[\w ]+:|[*\w.]+\s*(?:\([^)]*\))?\s*:)\s+(?=\S)")  # ":param x: ", "x (int): "
_HEADER = re.compile(r"^[\w ]{1,40}:$|^#+\s|^[\w ]+\s:\s[\w.,\[\] |]+$")  # "Args:", "# Title", "x : int"


def paragraphs(text: str, *, prose_file: bool = False) -> list[str]:
    """Prose paragraphs of a docstring or document, line by line: code (doctests, literal
    blocks after ``::``, fenced or, in prose files, indented blocks), markup lines (directives,
    underlines, tables) and section headers end a paragraph and are dropped; a field-list item
    (``:param x: ...``, ``x (int): ...``) starts a new paragraph without its name."""
    out: list[str] = []
    current: list[str] = []
    skip_indent: int | None = None  # inside a literal block indented deeper than this
    fenced = doctest = False

    def flush():
        if current:
            out.append(_clean_markup(" ".join(current)))
            current.clear()

    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.rstrip()
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if stripped.startswith("```") or stripped.startswith("~~~"):
            flush()
            fenced = not fenced
            continue
        if fenced:
            continue
        if not stripped:
            flush()
            doctest = False
            continue
        if skip_indent is not None:
            if indent > skip_indent:
                continue
            skip_indent = None
        if doctest or stripped.startswith(">>>"):
            flush()
            doctest = True
            continue
        if (prose_file and indent >= 4 and not current) or _CODE_LINE.match(stripped) or _HEADER.match(stripped):
            flush()
            if stripped.startswith(".. "):
                skip_indent = indent  # a directive's indented body
            continue
        field = _FIELD.match(stripped)
        if field:
            flush()
            stripped = stripped[field.end() :]
        literal = stripped.endswith("::")
        if literal:
            stripped = stripped[:-2].rstrip() + ("" if stripped[:-2].rstrip().endswith(":") else ".")
        current.append(stripped)
        if literal:
            flush()
            skip_indent = indent
    flush()
    return out


def split_sentences(paragraph: str) -> list[str]:
    parts = _SENT_END.split(paragraph)
    out: list[str] = []
    for part in parts:
        if out and _ABBREV.search(out[-1]):
            out[-1] = out[-1] + " " + part
        else:
            out.append(part)
    return [p.strip() for p in out if p.strip()]


def keep(sentence: str) -> bool:
    if not (MIN_CHARS <= len(sentence) <= MAX_CHARS):
        return False
    words = sentence.split()
    if not (MIN_WORDS <= len(words) <= MAX_WORDS):
        return False
    if not sentence[0].isupper() or sentence[-1] not in ".!?":
        return False
    if _CODEY.search(sentence):
        return False
    letters = sum(c.isalpha() or c == " " for c in sentence)
    if letters < 0.75 * len(sentence):
        return False
    if not sentence.isascii() and sum(not c.isascii() for c in sentence) > 2:
        return False  # mostly English: a few accented names allowed
    return True


def sentences_of(text: str, *, prose_file: bool = False) -> list[str]:
    return [s for p in paragraphs(text, prose_file=prose_file) for s in split_sentences(p) if keep(s)]


_PY_COMMENT = re.compile(r"^[ \t]*#(?![!:])[ ]?(.*)$")  # a whole-line comment (not #! or #: )
_PRAGMA = re.compile(r"^\s*(-\*-|(noqa|type|pylint|pragma|fmt|isort|mypy|pyright|NOLINT|copybara|LINT)\b)", re.I)
_C_BLOCK = re.compile(r"/\*+(.*?)\*+/", re.S)
_C_LINE = re.compile(r"^[ \t]*//[/!<]?[ ]?(.*)$")


def _runs(lines, pick) -> list[str]:
    """Runs of consecutive lines that ``pick`` keeps (it returns the kept text, or None), joined."""
    blocks, current = [], []
    for line in lines:
        kept = pick(line)
        if kept is not None:
            current.append(kept)
        elif current:
            blocks.append("\n".join(current))
            current = []
    if current:
        blocks.append("\n".join(current))
    return blocks


def python_comments(source: str) -> list[str]:
    """Blocks of consecutive whole-line ``#`` comments, markers stripped."""

    def pick(line: str) -> str | None:
        m = _PY_COMMENT.match(line)
        return m.group(1) if m and not _PRAGMA.match(m.group(1)) else None

    return _runs(source.split("\n"), pick)


def c_comments(source: str) -> list[str]:
    """``/* ... */`` blocks and runs of ``//`` lines of a C or C++ header, markers stripped."""
    blocks = [re.sub(r"(?m)^[ \t]*\*+[ ]?", "", m.group(1)) for m in _C_BLOCK.finditer(source)]

    def pick(line: str) -> str | None:
        m = _C_LINE.match(line)
        return m.group(1) if m else None

    return blocks + _runs(_C_BLOCK.sub("", source).split("\n"), pick)


def file_sentences(path: Path) -> list[str]:
    try:
        raw = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []
    name = path.name
    if name.endswith(".py"):
        texts = docstrings(raw) + python_comments(raw)
    elif name.endswith((".h", ".hpp")):
        texts = c_comments(raw)
    else:
        return sentences_of(_metadata_body(raw) if name == "METADATA" else raw, prose_file=True)
    return [s for text in texts for s in sentences_of(text)]


# ---- the corpus ------------------------------------------------------------------------------


@dataclass
class Corpus:
    ids: list[str]
    texts: list[str]
    sources: list[str]  # file each catalog text came from ("site-packages/numpy/...")
    query_texts: list[str]
    query_sources: list[str]
    pool: int  # distinct sentences found
    files: int  # source files read
    key: str
    seconds: float  # reading and cleaning, when it was made

    def text_hash(self) -> str:
        h = hashlib.sha256()
        for t in self.texts + ["\0queries\0"] + self.query_texts:
            h.update(t.encode("utf-8") + b"\n")
        return h.hexdigest()[:16]


def cache_root() -> Path:
    from scannlite.plugin.dual_encoder.cache import cache_dir

    path = cache_dir() / "real-text"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sources_key(spec: Spec, files: list[tuple[str, Path]]) -> str:
    h = hashlib.sha256(f"rules {RULES_VERSION} seed {SEED} q {spec.queries} n {spec.catalog}\n".encode())
    for rel, p in files:
        # Sizes, not mtimes: reinstalling the same package versions (any `uv sync`) keeps the set.
        h.update(f"{rel}\t{p.stat().st_size}\n".encode())
    return h.hexdigest()[:16]


def draw_order(texts: list[str]) -> np.ndarray:
    """Sentences ranked by a seeded hash of their text: the first ``queries`` are held out, the
    next ``catalog`` make the catalog. A hash, not a permutation of the pool, so a package added
    to the environment only adds its own sentences to the draw instead of reshuffling it (and
    most cached vectors stay valid)."""
    keys = [hashlib.blake2b(f"{SEED}\0{' '.join(t.lower().split())}".encode(), digest_size=8).digest() for t in texts]
    return np.array(sorted(range(len(texts)), key=keys.__getitem__), dtype=np.int64)


def build_corpus(spec: Spec = FULL, say=print) -> Corpus:
    """The cleaned, split text (from the cache when the sources have not changed)."""
    t0 = time.perf_counter()
    files = source_files(spec.roots)
    key = sources_key(spec, files)
    cached = cache_root() / f"corpus-{spec.name}-{key}.json"
    if cached.is_file():
        return Corpus(**json.loads(cached.read_text()))
    say(f"reading {len(files):,} files under " + " and ".join(str(roots()[r]) for r in spec.roots))
    seen: set[str] = set()
    texts, sources = [], []
    for rel, path in files:
        for s in file_sentences(path):
            norm = " ".join(s.lower().split())
            if norm in seen:
                continue
            seen.add(norm)
            texts.append(s)
            sources.append(rel)
    pool = len(texts)
    if pool < spec.min_catalog + spec.queries:
        raise SystemExit(
            f"only {pool:,} distinct sentences found; the benchmark needs {spec.min_catalog + spec.queries:,}"
        )
    order = draw_order(texts)
    q, c = order[: spec.queries], order[spec.queries : spec.queries + spec.catalog]
    corpus = Corpus(
        ids=[f"t{i:06d}" for i in range(len(c))],
        texts=[texts[i] for i in c],
        sources=[sources[i] for i in c],
        query_texts=[texts[i] for i in q],
        query_sources=[sources[i] for i in q],
        pool=pool,
        files=len(files),
        key=key,
        seconds=time.perf_counter() - t0,
    )
    from scannlite.store.atomic import atomic_open

    with atomic_open(cached) as f:
        f.write(json.dumps(corpus.__dict__).encode("utf-8"))
    return corpus


# ---- embedding (tensorflow worker) -----------------------------------------------------------


def bucket_length(tokens: int, seq_len: int) -> int:
    """Padded length of a text's batch: its token count with [CLS]/[SEP], rounded up to 8."""
    return min(seq_len, -(-min(tokens + 2, seq_len) // 8) * 8)


def embed_job(work: str, seq_len: int, batch: int, part: int, progress_path: str | None = None) -> dict:
    """In a tensorflow process: embed ``work/texts.json`` into ``work/part-*.npy``.

    Texts go in order of token length (``work/order.npy``), :data:`PART` at a time; each part
    is grouped by :func:`bucket_length` and passed to ``minilm.sentence_vectors`` with that
    ``seq_len``, so no text is cut before ``seq_len`` and padding stays short (the attention
    mask and the masked mean make padding invisible: the vectors equal those of one padded
    call to within 2e-7). The model is called through ``tf.function`` (one trace per bucket
    shape), about 1.5x faster than eager calls here. Parts already on disk are kept (resume)."""
    import tensorflow as tf

    from scannlite.plugin.dual_encoder import minilm
    from scannlite.plugin.dual_encoder.progress_log import ProgressWriter
    from scannlite.plugin.dual_encoder.wordpiece import load_vocab, minilm_vocab_path, tokenize

    started = time.perf_counter()
    folder = Path(work)
    progress = ProgressWriter(progress_path, min_interval=0.0)
    texts = json.loads((folder / "texts.json").read_text())
    vocab = load_vocab(str(minilm_vocab_path()))
    buckets = np.array([bucket_length(len(tokenize(t, vocab)), seq_len) for t in texts], dtype=np.int32)
    order = np.argsort(buckets, kind="stable")
    np.save(folder / "order.npy", order)
    model = minilm.pretrained(seq_len)
    compiled = tf.function(lambda feats: model(feats, training=False), reduce_retracing=True)

    class Compiled:  # what sentence_vectors calls: model(feats, training=False)
        def __call__(self, feats, training=False):
            return compiled(feats)

    progress.emit(
        "start",
        texts=len(texts),
        tokens=int(buckets.sum()),
        parts=-(-len(texts) // part),
        setup_seconds=round(time.perf_counter() - started, 1),
    )
    t_embed = time.perf_counter()
    done = 0
    for p, start in enumerate(range(0, len(texts), part)):
        idx = order[start : start + part]
        out = folder / f"part-{p:05d}.npy"
        if not out.exists():
            vectors = np.zeros((len(idx), minilm.HIDDEN), dtype=np.float32)
            for length in np.unique(buckets[idx]):
                rows = np.flatnonzero(buckets[idx] == length)
                vectors[rows] = minilm.sentence_vectors(
                    [texts[i] for i in idx[rows]], seq_len=int(length), batch=batch, model=Compiled()
                )
            tmp = folder / f"part-{p:05d}.tmp.npy"
            np.save(tmp, vectors)
            tmp.replace(out)
        done += len(idx)
        progress.emit("part", part=p, done=done, tokens=int(buckets[idx].sum()))
    return {
        "texts": len(texts),
        "tokens": int(buckets.sum()),
        "median_tokens": float(np.median(buckets)),
        "embed_seconds": time.perf_counter() - t_embed,
        "seconds": time.perf_counter() - started,
    }


# ---- the set ---------------------------------------------------------------------------------


@dataclass
class RealSet:
    ids: list[str]
    texts: list[str]
    sources: list[str]
    vectors: np.ndarray  # (N, 384) float32, L2-normalised
    query_texts: list[str]
    query_vectors: np.ndarray  # (Q, 384)
    info: dict  # spec, counts, timings (of the run that made the vectors), cache file

    def describe(self) -> str:
        i = self.info
        return (
            f"{len(self.texts):,} catalog sentences and {len(self.query_texts):,} held-out query sentences, "
            f"drawn (hash seed {SEED}) from {i['pool']:,} distinct English sentences in {i['files']:,} files "
            f"({_where(i['spec']['roots'])}), embedded by {MODEL} with seq_len {i['seq_len']}: "
            f"{self.vectors.shape[1]}-d, L2-normalised"
        )


def _where(labels) -> str:
    parts = {
        "site-packages": "the packages installed in .venv (pinned by uv.lock)",
        "stdlib": f"the Python {sys.version.split()[0]} standard library",
    }
    return "docstrings, comments and documentation of " + " and ".join(parts[x] for x in labels)


def _joined(texts: list[str]) -> np.ndarray:
    return np.frombuffer("\n".join(texts).encode("utf-8"), dtype=np.uint8)


def _split(buf: np.ndarray) -> list[str]:
    text = bytes(buf).decode("utf-8")
    return text.split("\n") if text else []


def vectors_key(spec: Spec, corpus: Corpus) -> str:
    from scannlite.plugin.dual_encoder.minilm_files import model_dir

    weights = (model_dir() / "model.safetensors").stat().st_size
    return f"{corpus.text_hash()}-L{spec.seq_len}-w{weights}"


def embedded_before(spec: Spec, key: str) -> dict[str, np.ndarray]:
    """Text -> vector from every cached set made with the same seq_len and weights: a sentence's
    vector depends on its text alone (padding is masked), so it is never embedded twice."""
    suffix = key.split("-", 1)[1]
    out: dict[str, np.ndarray] = {}
    for old in sorted(cache_root().glob(f"vectors-*-{suffix}.npz")):
        with np.load(old) as z:
            for texts, vectors in ((_split(z["texts"]), z["vectors"]), (_split(z["query_texts"]), z["query_vectors"])):
                out.update(zip(texts, vectors))
    return out


def _embed(texts: list[str], spec: Spec, work: Path, console) -> dict:
    """Run :func:`embed_job` in a tensorflow process, drawing its progress here."""
    import threading

    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from scannlite.plugin.dual_encoder.progress_log import ProgressReader
    from scannlite.store.workers.boundary import run_in

    work.mkdir(parents=True, exist_ok=True)
    texts_file = work / "texts.json"
    if not texts_file.is_file():
        texts_file.write_text(json.dumps(texts))
    log = work / "progress.jsonl"
    log.unlink(missing_ok=True)
    outcome: dict = {}

    def job() -> None:
        try:
            outcome["result"] = run_in(
                "tensorflow",
                "bench.real_text:embed_job",
                str(work),
                spec.seq_len,
                spec.batch,
                PART,
                str(log),
                timeout=6 * 3600,
            )
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc

    worker = threading.Thread(target=job, daemon=True)
    reader = ProgressReader(log)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[texts]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("MiniLM (tensorflow process): loading", total=None, texts="")
        worker.start()
        total = 0
        while True:
            alive = worker.is_alive()
            for ev in reader.read():
                if ev["event"] == "start":
                    total = ev["texts"]
                    bar.update(
                        task,
                        total=ev["tokens"],
                        description="MiniLM (tensorflow process): embedding",
                        texts=f"0/{total:,} texts",
                    )
                elif ev["event"] == "part":
                    bar.update(task, advance=ev["tokens"], texts=f"{ev['done']:,}/{total:,} texts")
            if not alive:
                break
            time.sleep(0.3)
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def load(spec: Spec = FULL, *, console=None, say=None) -> RealSet:
    """The real set for ``spec``: from the cache, or made now (minutes) and cached."""
    from scannlite.store.atomic import atomic_open

    if console is None:
        from rich.console import Console

        console = Console(stderr=True, highlight=False)
    say = say or (lambda msg: console.print(f"[dim]- {msg}[/dim]"))
    corpus = build_corpus(spec, say=say)
    key = vectors_key(spec, corpus)
    path = cache_root() / f"vectors-{spec.name}-{key}.npz"
    if not path.is_file():
        texts = corpus.texts + corpus.query_texts
        vectors = np.zeros((len(texts), 384), dtype=np.float32)
        known = embedded_before(spec, key)
        missing = [j for j, t in enumerate(texts) if t not in known]
        for j, t in enumerate(texts):
            if t in known:
                vectors[j] = known[t]
        del known
        say(
            f"embedding {len(missing):,} sentences with MiniLM ({len(texts) - len(missing):,} of {len(texts):,} "
            f"found in earlier caches; seq_len {spec.seq_len}, batches of {spec.batch}); parts are kept in the "
            f"cache, so an interrupted run resumes"
        )
        work = cache_root() / f"work-{spec.name}-{key}"
        t0 = time.perf_counter()
        job = {"texts": 0, "tokens": 0, "median_tokens": 0.0, "embed_seconds": 0.0, "seconds": 0.0}
        if missing:
            job = _embed([texts[j] for j in missing], spec, work, console)
            order = np.load(work / "order.npy")
            rows = np.asarray(missing)
            for p, start in enumerate(range(0, len(missing), PART)):
                vectors[rows[order[start : start + PART]]] = np.load(work / f"part-{p:05d}.npy")
        wall = time.perf_counter() - t0
        n = len(corpus.texts)
        info = {
            "spec": spec.__dict__ | {"roots": list(spec.roots)},
            "pool": corpus.pool,
            "files": corpus.files,
            "seq_len": spec.seq_len,
            "batch": spec.batch,
            "corpus_key": corpus.key,
            "vectors_key": key,
            "corpus_seconds": corpus.seconds,
            "embed_wall_seconds": wall,
            "reused": len(texts) - len(missing),
            **job,
        }
        with atomic_open(path) as f:
            np.savez(
                f,
                vectors=vectors[:n],
                query_vectors=vectors[n:],
                ids=np.array(corpus.ids),
                texts=_joined(corpus.texts),
                sources=_joined(corpus.sources),
                query_texts=_joined(corpus.query_texts),
                info=np.array(json.dumps(info)),
            )
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    with np.load(path) as z:
        info = json.loads(str(z["info"]))
        info["cache_file"] = str(path)
        return RealSet(
            ids=[str(i) for i in z["ids"]],
            texts=_split(z["texts"]),
            sources=_split(z["sources"]),
            vectors=z["vectors"],
            query_texts=_split(z["query_texts"]),
            query_vectors=z["query_vectors"],
            info=info,
        )


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the small smoke-run set (standard library text only)")
    ap.add_argument("--sample", type=int, default=5, help="print this many random catalog texts")
    args = ap.parse_args(argv)
    console = Console(highlight=False)
    t0 = time.perf_counter()
    real = load(QUICK if args.quick else FULL, console=console)
    i = real.info
    console.print(real.describe() + ".")
    console.print(
        f"cache: {i['cache_file']}; loaded in {time.perf_counter() - t0:.1f} s. When made: reading and "
        f"cleaning {i['corpus_seconds']:.0f} s, embedding {i['embed_wall_seconds'] / 60:.1f} min wall "
        f"({i['texts']:,} texts, {i['tokens']:,} padded tokens, median {i['median_tokens']:.0f}; "
        f"{i['texts'] / i['embed_seconds']:.0f} texts/s once the model was loaded)"
    )
    rng = np.random.default_rng(0)
    for j in rng.choice(len(real.texts), size=min(args.sample, len(real.texts)), replace=False):
        console.print(f"  [{real.sources[j]}] {real.texts[j]}", markup=False)
    return 0


if __name__ == "__main__":
    import bench

    bench.block_tensorflow()
    sys.exit(main())
