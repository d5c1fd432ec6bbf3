"""The run directory: its name, the `latest` link, and the per-epoch metrics file."""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

from ..errors import BundleError, ConfigError
from ..fileio import write_text

# metrics.csv holds what the training computed and nothing that depends on the clock, so two
# runs of the same command (and a run resumed after a crash) give byte-identical files on the
# CPU in deterministic mode; wall-clock timing goes to timing.csv beside it.
TIMING_COLUMNS = ("epoch", "seconds", "images_per_second")


def new_run_dir(out: str | Path, dataset: str, name: str | None = None) -> Path:
    """runs/<name> or runs/<dataset>-<YYYYmmdd-HHMMSS>[-N]; never reuses an existing folder."""
    out = Path(out)
    base = name or f"{dataset.replace('/', '-')}-{time.strftime('%Y%m%d-%H%M%S')}"
    candidate, n = out / base, 2
    try:
        out.mkdir(parents=True, exist_ok=True)
        while True:
            # mkdir either makes the folder or fails because it exists: two runs started in the
            # same second cannot both take one name (an exists() check before it could).
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                candidate, n = out / f"{base}-{n}", n + 1
    except OSError as e:  # --out names a file, or a folder we may not write to
        raise ConfigError(f"cannot make the run directory {candidate} ({e.strerror or e}); "
                          "give --out a folder you can write to") from e


def point_latest(run_dir: Path) -> None:
    """Make <out>/latest a relative symlink to run_dir, replacing the old one atomically."""
    link = run_dir.parent / "latest"
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(run_dir.name, target_is_directory=True)
        os.replace(tmp, link)
    except OSError:  # no symlinks here (some Windows setups): a plain file naming the run
        write_text(run_dir.parent / "latest.txt", run_dir.name + "\n")


def shown_path(path: str | Path) -> str:
    """`path` as the user would type it here: relative to the working folder when inside it."""
    path = Path(path)
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return str(path)
    return rel if not rel.startswith("..") else str(path)


def discard_run_dir(run_dir: Path) -> None:
    """Remove a run directory that never trained (a model that could not be built), and its latest link."""
    import shutil

    latest = run_dir.parent / "latest"
    if latest.is_symlink() and latest.resolve() == run_dir.resolve():
        latest.unlink()
    shutil.rmtree(run_dir, ignore_errors=True)


def find_run(path: str | Path) -> Path:
    """A run directory given its path, or `runs/latest`."""
    path = Path(path).expanduser()
    if (path / "config.yaml").is_file():
        return path.resolve()
    raise BundleError(f"{path} is not a run directory (no config.yaml); give runs/NAME or runs/latest")


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def write_metrics(run_dir: Path, history: list[dict], columns: tuple[str, ...]) -> None:
    """metrics.csv (one row per epoch, no clock values; `columns`: the task's Task.metrics_columns)
    and timing.csv (seconds, images/s)."""
    _write_csv(run_dir / "metrics.csv", columns, history)
    _write_csv(run_dir / "timing.csv", TIMING_COLUMNS, history)
