"""A real Datasette server on a loopback port and the catalogs its tests search (the review catalog with
Google's regex text embedder, the photo catalog with a tiny image tower): shared by the Datasette, browser,
Python API and search tests and docs/datasette_screenshots.py."""

from __future__ import annotations

import hashlib
import io
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np

from scannlite.store.catalog.catalog import Catalog
from scannlite.store.index.build import build
from scannlite.store.index.config import IndexConfig
from scannlite.store.workers.boundary import run_in
from tests.support.shared_fixtures import FIXTURES

BIN = Path(sys.executable).parent
REGEX_MODEL = FIXTURES / "regex_one_embedding_with_metadata.tflite"  # 16-d, movie-review vocabulary
XSS = "<script>alert(1)</script>"
ENTRY_POINT_HINT = (
    "scannlite's datasette entry point is not installed: pyproject needs "
    '[project.entry-points.datasette] scannlite = "scannlite.plugin.integrations.datasette_plugin"'
)

# Short movie reviews: the regex model's vocabulary comes from a movie-review data set.
SENTENCES = [
    "a funny and charming comedy",
    "the worst movie of the year",
    "a moving story about love and loss",
    "boring , slow and far too long",
    "the best film i have seen in years",
    "a thriller that keeps you guessing",
    "the characters are flat and the plot is silly",
    "beautiful photography and a great cast",
    "bad acting and a terrible script",
    "a smart , funny and touching film",
    "an action movie with no story",
    "one of the funniest comedies in years",
    "a dull and lifeless drama",
    "the director makes every scene count",
    "a warm family film for all ages",
    "too long and not funny at all",
    "a gripping and intelligent thriller",
    "the jokes fall flat",
    "a love story with a great cast",
    "the music is wonderful",
    "a mess from start to finish",
    "an honest and touching portrait of a family",
    "the special effects are the only good thing",
    "a horror movie that is more funny than scary",
    "the performances are excellent",
    "i laughed out loud",
    "a film about friendship and growing up",
    "it is hard to care about these characters",
    "a clever script and sharp dialogue",
    "the plot makes no sense",
    "a beautiful and sad film",
    "an entertaining summer movie",
    "the ending is a disappointment",
    "a documentary that will make you think",
    "the cast seems bored",
    "a romantic comedy with real heart",
]
XSS_TEXT = "the story of a hacker who writes scripts"  # its item's metadata is XSS


def embed_texts(texts: list[str]) -> np.ndarray:
    """The regex model's vectors, from the Task Library in a device process (as the plugin does)."""
    return run_in(
        "device", "scannlite.plugin.device.runtime:text_embed", REGEX_MODEL.read_bytes(), list(texts), l2_normalize=True
    )


def run_cli(*args, ok=True):
    proc = subprocess.run([str(BIN / "scannlite"), *map(str, args)], capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def build_review_catalog(path: Path, export_to: Path | None = None) -> Path:
    """A catalog of review sentences embedded by the regex model: snapshot 1 (retrained), then
    snapshot 2 (incremental: 2 deleted, 1 changed, 3 added), the text embedder configured and,
    if asked, snapshot 2 exported as a verified bundle."""
    texts = SENTENCES + [XSS_TEXT]
    vectors = embed_texts(texts)
    ids = [f"r{i:02d}" for i in range(len(SENTENCES))] + ["xss"]
    metadata = [json.dumps({"text": t}) for t in SENTENCES] + [XSS]
    with Catalog.create(path, 16) as cat:
        cat.add(ids[:30] + ["xss"], np.vstack([vectors[:30], vectors[-1:]]), metadata[:30] + [XSS])
        build(cat)
        cat.delete(["r01", "r02"])
        edited = json.dumps({"text": SENTENCES[3], "edited": True})
        cat.add(["r03"] + ids[30:-1], vectors[[3] + list(range(30, len(SENTENCES)))], [edited] + metadata[30:-1])
        build(cat)
    run_cli("configure", path, "--text-embedder", REGEX_MODEL)
    if export_to is not None:
        Path(export_to).parent.mkdir(parents=True, exist_ok=True)
        run_cli("export", path, "--embedder", REGEX_MODEL, "--out", export_to)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class DatasetteServer:
    """``datasette serve FILES`` on a free loopback port, stopped (by its pid) on exit."""

    def __init__(self, *files: Path, log: Path | None = None):
        self.files = [str(f) for f in files]
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.proc = None

    def __enter__(self):
        out = open(self.log, "wb") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            [str(BIN / "datasette"), "serve", *self.files, "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(self.url + "/-/versions.json", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"datasette exited with status {self.proc.returncode}")
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise RuntimeError("datasette did not start within 60 s")
                time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def database_names(self) -> dict[str, str]:
        """database file (resolved) -> Datasette's name for it."""
        dbs = get_json(self.url + "/-/databases.json")[1]
        return {str(Path(d["path"]).resolve()): d["name"] for d in dbs if d.get("path")}


def request(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def get_json(url: str, data: bytes | None = None, headers: dict | None = None):
    status, _, body = request(url, data, headers)
    return status, json.loads(body)


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, dict]:
    boundary = "scannliteTestBoundary7MA4YWxk"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def npy_bytes(vector) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(vector))
    return buf.getvalue()


def file_state(path: Path) -> tuple[str, int, int]:
    return hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns, path.stat().st_size


def image_embedder() -> bytes:
    """A real (tiny) TFLite image embedder: uint8 [1,4,4,3] -> dense -> [1,8], written as a
    flatbuffer by tests/support/model_builders.py; the Task Library's ImageEmbedder runs it."""
    from tests.support.model_builders import image_model

    weights = (np.random.default_rng(5).standard_normal((8, 4 * 4 * 3)) / 255).astype(np.float32)
    return image_model(weights, 4, 4)


def build_photo_catalog(tmp: Path) -> tuple[Path, Path, np.ndarray]:
    """600 items with 8 leaves: 12 images under a thumbnails root (ids are their relative paths,
    vectors from the image embedder) and 588 plain vectors, some with metadata naming files
    outside the root; image embedder and thumbnails root configured."""
    from PIL import Image

    rng = np.random.default_rng(11)
    images = tmp / "photos-images"
    (images / "img").mkdir(parents=True)
    arrays = []
    for i in range(12):
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        Image.fromarray(small).resize((64, 64), Image.NEAREST).save(images / "img" / f"{i:02d}.png")
        with Image.open(images / "img" / f"{i:02d}.png") as im:
            arrays.append(np.asarray(im.convert("RGB")))
    (tmp / "secret.png").write_bytes((images / "img" / "00.png").read_bytes())
    (images / "img" / "link.png").symlink_to(tmp / "secret.png")
    model = tmp / "image_embedder.tflite"
    model.write_bytes(image_embedder())
    embedded = run_in(
        "device", "scannlite.plugin.device.runtime:image_embed", model.read_bytes(), arrays, l2_normalize=True
    )
    x = np.vstack([embedded, rng.standard_normal((588, 8))]).astype(np.float32)
    ids = [f"img/{i:02d}.png" for i in range(12)] + [f"v{i}" for i in range(12, 600)]
    meta = [None] * 12 + ["../secret.png", "img/link.png", "/etc/passwd"] + [f"vector {i}" for i in range(15, 600)]
    with Catalog.create(tmp / "photos", 8, index=IndexConfig(num_leaves=8, leaves_to_search=2)) as cat:
        cat.add(ids, x, meta)
        build(cat)
    run_cli("configure", tmp / "photos", "--thumbnails-root", images, "--image-embedder", model)
    return tmp / "photos", images, x


# ---- fixtures ----------------------------------------------------------------------------------


def same_hits(got: list[dict], want: list[dict]) -> None:
    assert [h["id"] for h in got] == [h["id"] for h in want]
    np.testing.assert_allclose([h["distance"] for h in got], [h["distance"] for h in want], rtol=1e-6, atol=1e-7)
    assert [h["metadata"] for h in got] == [h["metadata"] for h in want]
    assert [h["rank"] for h in got] == list(range(1, len(want) + 1))


# Debian's headless Chromium, never a downloaded browser (the browser test, docs/datasette_screenshots.py).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
