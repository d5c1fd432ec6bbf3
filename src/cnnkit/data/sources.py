"""Where the files of a dataset come from: the cache, a system copy, or a verified download.

Look-up order: `$CNNKIT_HOME/datasets/<name>/` (default `~/.cache/cnnkit`), then the
folders a system package installs to, then the authors' mirrors. Downloads resume
from a partial file, are checked against the published checksum, and only then
are moved into place; a file that fails the check is removed. With no network
(or `CNNKIT_OFFLINE=1`), the error names each missing file, its URLs and the
folder to put it in.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from ..errors import DatasetError, DatasetNotFound
from .catalog import DatasetInfo, RemoteFile

CHUNK = 1 << 20


def cnnkit_home() -> Path:
    return Path(os.environ.get("CNNKIT_HOME") or Path.home() / ".cache" / "cnnkit")


def dataset_cache_dir(name: str) -> Path:
    return cnnkit_home() / "datasets" / name


def offline() -> bool:
    return os.environ.get("CNNKIT_OFFLINE", "") not in ("", "0")


def _present(folder: Path, file: RemoteFile) -> Path | None:
    """The file as distributed, or already decompressed by the user."""
    for candidate in (folder / file.name, folder / file.name.removesuffix(".gz")):
        if candidate.is_file():
            return candidate
    return None


def locate(info: DatasetInfo, download: bool = True) -> dict[str, Path]:
    """Return {file name: path} for every file of `info`, downloading what is missing."""
    cache = dataset_cache_dir(info.name)
    for folder in (cache, *map(Path, info.system_paths)):
        found = {f.name: _present(folder, f) for f in info.files}
        if all(found.values()):
            return found  # type: ignore[return-value]
    found = {f.name: _present(cache, f) for f in info.files}
    missing = [f for f in info.files if found[f.name] is None]
    errors: list[str] = []
    if download and not offline():
        for f in missing:
            try:
                found[f.name] = fetch(f, cache)
            except DatasetError as e:
                errors.append(str(e))
        missing = [f for f in info.files if found[f.name] is None]
    if missing:
        raise DatasetNotFound(missing_message(info, missing, cache, errors))
    return found  # type: ignore[return-value]


def missing_message(info: DatasetInfo, missing: list[RemoteFile], cache: Path, errors=()) -> str:
    lines = [f"{info.title}: {len(missing)} file(s) missing and could not be downloaded."]
    lines += [f"  ({e})" for e in errors[:2]]
    lines.append(f"Put these files in {cache}/ :")
    for f in missing:
        check = f"sha256 {f.sha256}" if f.sha256 else (f"md5 {f.md5}" if f.md5 else "no checksum")
        lines.append(f"  {f.name}  from {' or '.join(f.urls)}  ({check})")
    if info.system_paths:
        lines.append(f"or install the system copy into {', '.join(info.system_paths)}"
                     + (" (Debian: apt-get install dataset-fashion-mnist)"
                        if info.name == "fashion-mnist" else ""))
    lines.append("(CNNKIT_HOME moves the cache folder.)")
    return "\n".join(lines)


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, file: RemoteFile) -> None:
    """Raise DatasetError (and delete the file) when size or checksum differ from the record."""
    problems = []
    if file.size is not None and path.stat().st_size != file.size:
        problems.append(f"{path.stat().st_size} bytes, expected {file.size}")
    for algorithm in ("sha256", "md5"):
        expected = getattr(file, algorithm)
        if expected and not problems:
            got = file_digest(path, algorithm)
            if got != expected:
                problems.append(f"{algorithm} {got}, expected {expected}")
            break  # one strong check is enough
    if problems:
        path.unlink(missing_ok=True)
        raise DatasetError(f"{file.name} is corrupt or incomplete ({'; '.join(problems)}); "
                           "it was removed, run the command again to download it afresh")


def fetch(file: RemoteFile, folder: Path, timeout: float = 30.0) -> Path:
    """Download `file` into `folder`, resuming a `.part` file, trying each mirror in turn."""
    folder.mkdir(parents=True, exist_ok=True)
    target, part = folder / file.name, folder / (file.name + ".part")
    reasons = []
    for url in file.urls:
        try:
            _download(url, part, timeout)
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            reasons.append(f"{url}: {getattr(e, 'reason', e)}")
            continue
        os.replace(part, target)
        verify(target, file)
        return target
    raise DatasetError(f"could not download {file.name}: " + "; ".join(reasons))


def _download(url: str, part: Path, timeout: float) -> None:
    start = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "cnnkit"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        resumed = start and response.status == 206
        with open(part, "ab" if resumed else "wb") as out:
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
