"""One writer per run directory: a lock file that the kernel releases when its process ends.

`cnnkit train` and `finetune` hold `RUN/.lock` (an exclusive, non-blocking `fcntl.flock`) for as
long as they write RUN, so a second process that would write the same run (a `--resume` while the
run is still going) is refused at once, with the holder's PID in the message. flock belongs to the
open file: a crash or a SIGKILL releases it with the process, and the PID left in the file of a
dead holder is simply overwritten by the next one (a stale lock never blocks anybody). Where
flock does not exist (Windows) runs are not locked.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ..errors import RunBusyError
from .rundir import shown_path

LOCK_NAME = ".lock"

# Run directory -> the open descriptor of its lock, for the locks this process holds. A second
# acquire of the same run in this process (a resume after an error in the same Python session)
# keeps the lock it has: flock would refuse a second descriptor even to its own process.
_held: dict[Path, int] = {}


def acquire(run_dir: Path) -> None:
    """Take RUN/.lock or raise RunBusyError naming the process that holds it."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock
        return
    run_dir = Path(run_dir).resolve()
    if run_dir in _held:
        return
    path = run_dir / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:  # EWOULDBLOCK: a living process holds it
            holder = os.read(fd, 256).decode("utf-8", "replace").split()
            os.close(fd)
            who = f"process {holder[0]}" + (f" on {holder[1]}" if len(holder) > 1 else "") if holder else "another process"
            stop = f"stop it with `kill -INT {holder[0]}` (it writes a checkpoint first)" if holder else "stop it"
            raise RunBusyError(f"{shown_path(run_dir)} is in use by {who}, which is still writing it; wait for it "
                               f"to end or {stop}, then try again") from e
        # The holder before us unlinks the file as it releases it (release()); if that happened
        # between our open and our flock, we hold a file no one else will open: take the new one.
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    _held[run_dir] = fd


def release(run_dir: Path) -> None:
    """Give RUN/.lock back (and remove the file: a finished run keeps no lock file)."""
    fd = _held.pop(Path(run_dir).resolve(), None)
    if fd is None:
        return
    try:
        (Path(run_dir) / LOCK_NAME).unlink(missing_ok=True)  # while still held: see acquire()
    finally:
        os.close(fd)
