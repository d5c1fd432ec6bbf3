"""One writer per run directory (train/runlock.py), and run names that two starts cannot both take.

The holder in these tests is a small process that takes the lock the way cnnkit does (flock on
RUN/.lock, its PID written in it) and waits on its stdin; killing it with SIGKILL shows that the
kernel releases the lock of a process that never got to clean up. The refusal from the real CLI,
while a real run is held mid-epoch, is in test_signals.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest

from cnnkit.errors import RunBusyError
from cnnkit.train import runlock
from cnnkit.train.rundir import new_run_dir

HOLDER = r"""
import fcntl, os, socket, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path):
    """A process holding tmp_path/run's lock (its Popen)."""
    run = tmp_path / "run"
    run.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run / runlock.LOCK_NAME)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def test_a_run_held_by_a_living_process_is_refused_with_its_pid_until_it_ends(holder, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(RunBusyError) as info:
        runlock.acquire(run)
    assert str(info.value) == (f"{run} is in use by process {holder.pid} on {os.uname().nodename}, which is still "
                               f"writing it; wait for it to end or stop it with `kill -INT {holder.pid}` (it writes "
                               "a checkpoint first), then try again")
    holder.send_signal(signal.SIGKILL)  # a crash: nobody removes the file, the kernel drops the lock
    holder.wait()
    assert (run / runlock.LOCK_NAME).exists()
    runlock.acquire(run)
    try:
        assert (run / runlock.LOCK_NAME).read_text() == f"{os.getpid()} {os.uname().nodename}\n"
        runlock.acquire(run)  # this process holds it already: a second acquire keeps it
    finally:
        runlock.release(run)
    assert not (run / runlock.LOCK_NAME).exists()
    runlock.release(run)  # releasing what is not held does nothing


def test_a_stale_lock_file_from_a_dead_process_does_not_block(tmp_path):
    (tmp_path / runlock.LOCK_NAME).write_text("4194304 gone-host\n")  # no process holds it
    runlock.acquire(tmp_path)
    assert (tmp_path / runlock.LOCK_NAME).read_text().split()[0] == str(os.getpid())
    runlock.release(tmp_path)


def test_runs_started_at_the_same_moment_never_share_a_folder(tmp_path):
    made, start = [], threading.Barrier(8)

    def start_one():
        start.wait()
        made.append(new_run_dir(tmp_path, "digits", "same"))

    threads = [threading.Thread(target=start_one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.name for p in made) == sorted(["same", *(f"same-{n}" for n in range(2, 9))])
