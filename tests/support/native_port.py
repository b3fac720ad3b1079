"""Builds and runs of libscannlite for the portability, Java and fuzz tests.

Rule: every build goes through the make targets a user runs (libscannlite/cross.mk, java.mk,
fuzz.mk), never through compiler lines of the tests' own, so the tests prove the targets; the
tools come from Debian (`make native-deps`). See docs/native-port.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB_DIR = ROOT / "libscannlite"
BUILD = LIB_DIR / "build"
QEMU_SYSROOT = "/usr/aarch64-linux-gnu"

#: Debian package that provides each tool (what `make native-deps` installs).
TOOLS = {
    "aarch64-linux-gnu-gcc": "gcc-aarch64-linux-gnu",
    "aarch64-linux-gnu-objdump": "binutils-aarch64-linux-gnu",
    "qemu-aarch64": "qemu-user",
    "clang": "clang",
    "javac": "openjdk-17-jdk-headless",
    "java": "openjdk-17-jdk-headless",
    "readelf": "binutils",
    "make": "make",
}


def require(*tools: str) -> None:
    """Skip, naming the Debian package, when a tool is genuinely missing from this machine."""
    for tool in tools:
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: install Debian's {TOOLS.get(tool, tool)} (make native-deps)")
    if "qemu-aarch64" in tools and not Path(QEMU_SYSROOT, "lib", "ld-linux-aarch64.so.1").exists():
        pytest.skip(f"no ARM64 C library in {QEMU_SYSROOT}: install Debian's libc6-dev-arm64-cross (make native-deps)")


def make(*targets: str, timeout: float = 900) -> None:
    """Run libscannlite's make targets from the project root; a failure fails the test with
    make's last lines."""
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", "libscannlite", *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-25:])
        pytest.fail(f"make {' '.join(targets)} failed (exit {proc.returncode}):\n{tail}", pytrace=False)


def load_aligns(path: Path) -> list[int]:
    """The Align of every LOAD segment of an ELF file, from `readelf -lW`."""
    out = subprocess.run(["readelf", "-lW", str(path)], capture_output=True, text=True, check=True).stdout
    aligns = [int(line.split()[-1], 16) for line in out.splitlines() if line.split()[:1] == ["LOAD"]]
    assert aligns, f"readelf -lW {path} lists no LOAD segment"
    return aligns


def machine(path: Path) -> str:
    """The ELF header's Machine field (e.g. "AArch64")."""
    out = subprocess.run(["readelf", "-hW", str(path)], capture_output=True, text=True, check=True).stdout
    match = re.search(r"^\s*Machine:\s*(.+)$", out, re.M)
    assert match, f"readelf -h {path} has no Machine line"
    return match.group(1).strip()


def run(cmd: list[str], timeout: float = 300, input_lines: str | None = None, **env) -> subprocess.CompletedProcess:
    """Run a command, bytes out (the comparisons are byte for byte); ``input_lines``: its stdin."""
    full_env = {**os.environ, **env} if env else None
    return subprocess.run(
        cmd,
        capture_output=True,
        timeout=timeout,
        env=full_env,
        input=input_lines.encode() if input_lines is not None else None,
    )


def qemu(cli: Path) -> list[str]:
    """The command prefix that runs an ARM64 Linux program here."""
    return ["qemu-aarch64", "-L", QEMU_SYSROOT, "-E", f"LD_LIBRARY_PATH={cli.parent}", str(cli)]


def vectors(out_dir: Path) -> list[dict]:
    """The native library's test vectors (tests/support/native_vectors.py): indexes and
    bundles with their query files."""
    from tests.support.native_vectors import make_vectors

    found = [{**v, "path": Path(v["path"]), "queries": Path(v["queries"])} for v in make_vectors(out_dir)]
    assert found, "native_vectors.make_vectors returned no test vectors"
    return found


def allow_file(v: dict, cli: Path, out_dir: Path) -> Path:
    """An allow-list for a vector's index: every third id up to 20 past its size, and the largest
    uint64 (never an item)."""
    info = run([str(cli), "info", str(v["path"])]).stdout.decode()
    size = int(dict(line.split(" ", 1) for line in info.splitlines())["size"])
    path = out_dir / f"{Path(v['path']).name}.allow"
    path.write_text("".join(f"{i}\n" for i in range(0, size + 20, 3)) + "18446744073709551615\n")
    return path
