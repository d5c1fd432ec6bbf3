"""A full disk in the middle of a checkpoint: one clear line, the previous checkpoint whole, no temporary
file left, and `--resume` finishing the run exactly once there is space again.

The disk is a real one where it can be: a 16 MB tmpfs mounted for the test when it runs as root
and the mount is allowed, filled up just before the second checkpoint is written so that the
write fails halfway with the kernel's own ENOSPC. Elsewhere (not root, or a container that refuses
the mount, as CI's may) the same write fails halfway through a fault-injecting torch.save that
writes half the bytes and raises ENOSPC. The unit tests below cover atomic_path with the injected
fault on every machine.
"""

from __future__ import annotations

import errno
import io
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from helpers_faults import FLAGS, assert_same_run, reference_run, temporaries, trainer_module

from cnnkit.cli import main
from cnnkit.errors import DiskFullError
from cnnkit.fileio import atomic_path, remove_temporaries, write_text
from cnnkit.train.checkpoint import read_checkpoint, serialized_size


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return reference_run(tmp_path_factory)


def _mount_tmpfs(folder: Path) -> bool:
    """A 16 MB tmpfs at `folder`, when this process may mount one."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], capture_output=True)
    return done.returncode == 0


@pytest.fixture(params=["tmpfs", "injected"])
def disk(request, tmp_path):
    """(folder to train into, how its disk fills up: 'tmpfs', or 'injected' where no tmpfs can be mounted)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = request.param == "tmpfs" and _mount_tmpfs(folder)
    yield folder, "tmpfs" if mounted else "injected"
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def _half_then_enospc(real_save):
    """torch.save that writes half of a file and fails as a full disk does (and serialises to
    anything that is not a file, such as the byte counter of the error's message, as usual)."""

    def save(obj, f, *args, **kwargs):
        if not hasattr(f, "fileno"):
            return real_save(obj, f, *args, **kwargs)
        buffer = io.BytesIO()
        real_save(obj, buffer)
        f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        f.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    return save


def test_a_full_disk_mid_checkpoint_says_so_keeps_the_last_one_and_resume_finishes(
        disk, reference, monkeypatch, capsys):
    out, how = disk
    real_torch_save, real_save_checkpoint = torch.save, trainer_module.save_checkpoint
    filler = out / "filler"
    calls = []

    def save_checkpoint(path, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2 and how == "tmpfs":  # leave room for about half of this checkpoint
            room = shutil.disk_usage(out).free - os.path.getsize(path) // 2
            filler.write_bytes(b"\0" * room)
        elif len(calls) == 2:
            monkeypatch.setattr(torch, "save", _half_then_enospc(real_torch_save))
        try:
            real_save_checkpoint(path, *args, **kwargs)
        finally:
            monkeypatch.setattr(torch, "save", real_torch_save)

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_checkpoint)
    run = out / "full"
    assert main(["train", *FLAGS, "--out", str(out), "--name", "full"]) == 2
    err = capsys.readouterr().err
    size = os.path.getsize(run / "last" / "checkpoint.pt")  # the same model: the failed one's size, within bytes
    assert err.startswith(f"error: no space left on the disk of {run / 'last'}: checkpoint.pt needs "
                          f"{size / 1e3:.0f}"[:-1]), err  # e.g. "needs 661.4 kB" (rounding aside)
    assert err.endswith(f"free; free some space there (or write to another disk); the last checkpoint (epoch 0, "
                        f"step 3) is intact in {run / 'last'}: continue with `cnnkit train --resume {run}`\n")
    assert len(err.splitlines()) == 1
    state = read_checkpoint(run / "last" / "checkpoint.pt")["state"]
    assert (state["epoch"], state["step_in_epoch"]) == (0, 3)
    assert not temporaries(run) and not (run / ".lock").exists()

    monkeypatch.undo()
    filler.unlink(missing_ok=True)
    assert main(["train", "--resume", str(run)]) == 0
    assert_same_run(run, reference)


def test_atomic_path_turns_enospc_mid_write_into_one_line_and_leaves_nothing(tmp_path):
    target = tmp_path / "a" / "checkpoint.pt"
    write_text(target, "the previous one")
    payload = {"w": torch.zeros(1000)}
    with pytest.raises(DiskFullError) as info, atomic_path(target, needed=lambda: serialized_size(payload)) as tmp:
        with open(tmp, "wb") as f:
            _half_then_enospc(torch.save)(payload, f)
    message = str(info.value)
    assert message.startswith(f"no space left on the disk of {target.parent}: checkpoint.pt needs "
                              f"{serialized_size(payload) / 1e3:.1f} kB, ")
    assert message.endswith(" free; free some space there (or write to another disk)")
    assert target.read_text() == "the previous one"
    assert [p.name for p in target.parent.iterdir()] == ["checkpoint.pt"]


def test_a_size_unknown_says_what_was_written_and_other_errors_stay_what_they_are(tmp_path):
    with pytest.raises(DiskFullError, match=r"x.bin needs more than the 4 bytes written, "), \
            atomic_path(tmp_path / "x.bin") as tmp:
        tmp.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError) as info, atomic_path(tmp_path / "y.bin") as tmp:
        tmp.write_bytes(b"half")
        raise OSError(errno.EIO, "Input/output error")
    assert info.value.errno == errno.EIO and not isinstance(info.value, DiskFullError)
    assert list(tmp_path.iterdir()) == []


def test_remove_temporaries_takes_atomic_paths_leftovers_only(tmp_path):
    (tmp_path / "last").mkdir()
    left = [tmp_path / "last" / ".checkpoint.pt.k2j4_9zq.tmp", tmp_path / ".metrics.csv.abcdefgh.tmp"]
    kept = [tmp_path / "notes.tmp", tmp_path / ".hidden.tmp", tmp_path / "last" / "model.safetensors"]
    for p in left + kept:
        p.write_text("x")
    assert sorted(remove_temporaries(tmp_path)) == sorted(left)
    assert all(p.exists() for p in kept) and not any(p.exists() for p in left)
