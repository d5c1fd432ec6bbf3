"""Decoding a FileList into ImageArrays: threads, JPEG draft mode, bad files skipped, decoded cache.

Unreadable or truncated files are skipped with a warning and returned by name
(the run report counts them); with `strict=True` the first one raises
DatasetError. Variable-size images are resized so the shorter side fits, then
centre-cropped (the usual "resize + centre crop" of ImageNet evaluation). The
decoded arrays can be cached under `$CNNKIT_HOME/decoded/`, keyed by the files'
names, sizes and modification times, so the second run skips JPEG decoding.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DatasetError
from .arrays import FileList, ImageArrays
from .images import DECODE_ERRORS, fit, normalise_mode


class DataWarning(UserWarning):
    """Something in the data was left out (an unreadable image, an empty class folder)."""


_default_showwarning = warnings.showwarning


def _show_data_warning(message, category, filename, lineno, file=None, line=None):
    # A data warning is for the user, not the developer: one line, no source location.
    if isinstance(category, type) and issubclass(category, DataWarning):
        try:
            print(f"warning: {message}", file=file or sys.stderr)
        except OSError:
            pass
        return
    _default_showwarning(message, category, filename, lineno, file, line)


if getattr(warnings.showwarning, "__name__", "") != "_show_data_warning":
    warnings.showwarning = _show_data_warning


def decode_file(path: str, size: tuple[int, int], channels: int, box=None) -> np.ndarray:
    """One image file -> uint8 C x H x W array. Raises one of DECODE_ERRORS when it cannot."""
    with Image.open(path) as img:
        if img.format == "JPEG" and box is None:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that still covers the target.
            scale = max(size[0] / img.height, size[1] / img.width)
            img.draft("L" if channels == 1 else "RGB", (int(img.width * scale) + 1, int(img.height * scale) + 1))
        img.load()  # decode now: a truncated file fails here
        if box is not None:
            img = img.crop(box)
        img = fit(normalise_mode(img, channels), size)
        array = np.asarray(img, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def _cache_key(files: FileList) -> str:
    h = hashlib.sha1(json.dumps([files.size, files.channels, files.boxes]).encode())
    for p in files.paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:20]


def decode_all(files: FileList, *, strict: bool = False, cache_dir: Path | None = None,
               threads: int | None = None) -> tuple[ImageArrays, list[str]]:
    """Decode every file; returns (arrays of the readable ones, names of the skipped ones)."""
    n = len(files)
    cache_file = None
    if cache_dir is not None and n:
        cache_file = cache_dir / f"{_cache_key(files)}.npz"
        if cache_file.is_file():
            try:
                with np.load(cache_file) as z:
                    return _assemble(files, z["images"], z["ok"], z["errors"].tolist(), strict)
            except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
                cache_file.unlink(missing_ok=True)  # damaged (the disk, not our atomic write): decode again
    images = np.zeros((n, files.channels, *files.size), dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    errors = [""] * n

    def work(i: int) -> None:
        box = files.boxes[i] if files.boxes is not None else None
        try:
            images[i] = decode_file(files.paths[i], files.size, files.channels, box)
            ok[i] = True
        except DECODE_ERRORS as e:
            errors[i] = f"{type(e).__name__}: {e}"

    threads = threads or min(4, os.cpu_count() or 1)
    if threads > 1 and n > 64:
        with ThreadPoolExecutor(threads) as pool:  # PIL decodes with the GIL released
            list(pool.map(work, range(n), chunksize=64))
    else:
        for i in range(n):
            work(i)
    if cache_file is not None:
        from ..fileio import atomic_path

        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache_file) as tmp, open(tmp, "wb") as f:
            np.savez(f, images=images, ok=ok, errors=np.array(errors))
    return _assemble(files, images, ok, errors, strict)


def _assemble(files: FileList, images: np.ndarray, ok: np.ndarray, errors: list[str],
              strict: bool) -> tuple[ImageArrays, list[str]]:
    bad = np.flatnonzero(~ok)
    skipped = [files.paths[i] for i in bad]
    if len(bad):
        first = f"{files.paths[bad[0]]} ({errors[bad[0]]})"
        if strict:
            raise DatasetError(f"unreadable image {first}; remove it or run without --strict to skip "
                               "unreadable files")
        warnings.warn(f"skipped {len(bad)} unreadable image(s), e.g. {first}", DataWarning, stacklevel=3)
        keep = np.flatnonzero(ok)
        return ImageArrays(torch.from_numpy(images[keep]), files.labels[torch.from_numpy(keep)]), skipped
    return ImageArrays(torch.from_numpy(images), files.labels.clone()), skipped
