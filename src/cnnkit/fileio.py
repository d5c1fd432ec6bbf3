"""Small file helpers shared by every folder: atomic writes and JSON/YAML files.

Every checkpoint, bundle and report is written through `atomic_path` so that a
crash at any moment leaves either the old file or the new one, never half of one.
A full disk is one `DiskFullError` naming the folder, the space the file needs and
the space that is free; a process killed mid-write leaves a temporary file (hidden,
`.NAME.XXXXXXXX.tmp`) that `remove_temporaries` clears once the folder is ours again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, DiskFullError

# ENOSPC: the file system is full; EDQUOT: the user's quota is (not defined on every platform).
_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
# The names tempfile.mkstemp gives atomic_path's temporary files (8 random characters).
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, needed: int | Callable[[], int] | None = None) -> Iterator[Path]:
    """Yield a temporary path next to `path`; move it into place only if the block succeeds.

    needed: the file's size in bytes (or a function computing it, called only when the disk is
    full) for the DiskFullError's message. Write through Python file objects (not a library's own
    C++ or Rust writer) inside the block: those lose the errno that tells a full disk apart.
    """
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        with open(tmp_path, "rb+") as f:  # flush to disk before the rename makes it visible
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except Exception as e:
        if not _is_disk_full(e):
            raise
        written = tmp_path.stat().st_size if tmp_path is not None and tmp_path.exists() else 0
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)  # give its space back before measuring what is free
        raise disk_full(path, needed, written) from e
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def _is_disk_full(error: BaseException | None) -> bool:
    """ENOSPC/EDQUOT, also behind another error: torch.save's zip writer, closing after a failed
    write, raises a RuntimeError of its own whose __context__ is the OSError that says why."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, OSError) and error.errno in _DISK_FULL:
            return True
        error, seen = error.__cause__ or error.__context__, seen + 1
    return False


def disk_full(path: Path, needed: int | Callable[[], int] | None, written: int = 0) -> DiskFullError:
    """The one-line error for a file that did not fit: the folder, the size needed, the space free."""
    import shutil

    size = needed() if callable(needed) else needed
    need = f"needs {format_bytes(size)}" if size else f"needs more than the {format_bytes(written)} written"
    try:
        free = f"{format_bytes(shutil.disk_usage(path.parent).free)} free"
    except OSError:
        free = "free space unknown"
    return DiskFullError(f"no space left on the disk of {path.parent}: {path.name} {need}, {free}; "
                         "free some space there (or write to another disk)")


def format_bytes(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files atomic_path left under `folder` when its process was killed
    mid-write (call it only while no other process writes there: train/runlock.py)."""
    found = [p for p in Path(folder).rglob(".*.tmp") if _TEMPORARY.match(p.name) and p.is_file()]
    for p in found:
        p.unlink(missing_ok=True)
    return found


def write_text(path: str | os.PathLike, text: str) -> None:
    data = text.encode("utf-8")
    with atomic_path(path, needed=len(data)) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: str | os.PathLike) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_yaml(path: str | os.PathLike, data: Any) -> None:
    write_text(path, yaml.safe_dump(data, sort_keys=False))


def read_yaml(path: str | os.PathLike) -> Any:
    """The YAML in `path`; a missing, unreadable or malformed file is a ConfigError that names it."""
    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"{path} cannot be read as YAML ({reason})") from e


def safe_name(text: str) -> str:
    """A model name as a file name: `timm:tf_efficientnet_lite0` -> `timm_tf_efficientnet_lite0`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "model"
