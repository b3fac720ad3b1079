"""The one atomic file replacement: whole new files or the old ones, never half of either."""

import pytest

from scannlite.store.atomic import atomic_open, replacing, write_atomically


def test_replaces_whole_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    write_atomically(target, b"new contents")
    assert target.read_bytes() == b"new contents"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_a_failure_while_writing_leaves_every_target_untouched(tmp_path):
    a, b = tmp_path / "a.tflite", tmp_path / "a.manifest.json"
    a.write_bytes(b"bundle 1")
    with pytest.raises(RuntimeError):
        with replacing(a, b) as (ta, tb):
            ta.write_bytes(b"bundle 2")
            raise RuntimeError("verification failed")
    assert a.read_bytes() == b"bundle 1" and not b.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.tflite"]


def test_atomic_open_writes_through_a_file_object(tmp_path):
    target = tmp_path / "x.txt"
    with atomic_open(target, "w") as f:
        f.write("hello")
        assert not target.exists()  # nothing visible before the block ends
    assert target.read_text() == "hello"
