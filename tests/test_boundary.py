"""The process boundary's warm workers: reused, bounded, replaced when they die, and a model
file replaced on disk is loaded anew. Real worker processes and the real Task Library."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from scannlite.store.workers import boundary
from scannlite.store.workers.boundary import ProcessFailed, WorkerError, run_in

pytestmark = pytest.mark.device

RUNTIME = "scannlite.plugin.device.runtime"


def started() -> int:
    return boundary.stats()["started"]["device"]


def test_a_second_call_reuses_the_warm_worker():
    first = run_in("device", "os:getpid")
    before = started()
    assert [run_in("device", "os:getpid") for _ in range(5)] == [first] * 5
    assert started() == before  # no process was started for them
    assert first != os.getpid()


def test_a_failing_function_keeps_its_worker_and_a_fresh_call_gets_its_own():
    pid = run_in("device", "os:getpid")
    with pytest.raises(WorkerError, match="No such file"):
        run_in("device", "os:stat", "/no/such/file")
    assert run_in("device", "os:getpid") == pid
    assert run_in("device", "os:getpid", fresh=True) != pid


def test_a_worker_killed_mid_call_is_one_clear_error_and_the_next_call_gets_a_new_one():
    pid = run_in("device", "os:getpid")
    killer = threading.Timer(1.0, os.kill, (pid, signal.SIGKILL))
    killer.start()
    with pytest.raises(ProcessFailed) as err:
        run_in("device", "time:sleep", 30)
    assert "crashed (SIGKILL) in sleep" in str(err.value) and "\n" not in str(err.value)
    again = run_in("device", "os:getpid")
    assert again != pid


def test_an_overrun_is_killed_and_reported():
    with pytest.raises(ProcessFailed, match="did not finish sleep within 1 s"):
        run_in("device", "time:sleep", 20, timeout=1)
    assert isinstance(run_in("device", "os:getpid"), int)


def test_workers_are_bounded_and_shared_by_concurrent_callers():
    boundary.set_max_workers("device", 2)
    try:
        pids, errors = [], []

        def call():
            try:
                pids.append(run_in("device", "os:getpid"))
                run_in("device", "time:sleep", 0.3)
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=call) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and len(pids) == 6 and len(set(pids)) <= 2
    finally:
        boundary.set_max_workers("device", max(1, os.cpu_count() or 1))


def test_a_model_replaced_on_disk_is_loaded_anew(tmp_path):
    path = tmp_path / "tower.tflite"
    a = np.eye(4, 8, dtype=np.float32)
    path.write_bytes(run_in("device", f"{RUNTIME}:make_probe_model", a))
    first = run_in("device", f"{RUNTIME}:text_embed", str(path), ["q1"])
    assert np.allclose(first, a[1:2])
    assert np.allclose(run_in("device", f"{RUNTIME}:text_embed", str(path), ["q1"]), first)  # cached
    b = np.eye(4, 8, k=3, dtype=np.float32)
    path.write_bytes(run_in("device", f"{RUNTIME}:make_probe_model", b))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime even on a coarse clock
    assert np.allclose(run_in("device", f"{RUNTIME}:text_embed", str(path), ["q1"]), b[1:2])


@pytest.mark.slow
def test_idle_workers_exit_by_themselves(tmp_path):
    script = (
        "import os, time\n"
        "from scannlite.store.workers.boundary import run_in\n"
        "pid = run_in('device', 'os:getpid')\n"
        "time.sleep(4)\n"
        "gone = not os.path.exists(f'/proc/{pid}') or open(f'/proc/{pid}/stat').read().split()[2] == 'Z'\n"
        "print(gone, run_in('device', 'os:getpid') != pid)\n"
    )
    env = {**os.environ, "SCANNLITE_WORKER_IDLE": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True"]
