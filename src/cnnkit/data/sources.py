"""Where the files of a dataset come from: the cache, a system copy, or a verified download.

Look-up order: `$CNNKIT_HOME/datasets/<name>/` (default `~/.cache/cnnkit`), then the
folders a system package installs to, then the authors' mirrors. Downloads resume
from a partial file (HTTP Range), are checked against the published size and
checksum, and only then are moved into place; a file that fails the check is
removed and the next mirror is tried. Archives are unpacked with path checks (no
absolute names, no `..`, no links that leave the folder). With no network (or
`CNNKIT_OFFLINE=1`), the error names each missing file, its URLs, its checksum
and the folder to put it in. Manual (Kaggle, registration) datasets get the same
kind of message with the steps to follow.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from ..errors import DatasetError, DatasetNotFound
from .catalog import DatasetInfo, RemoteFile

CHUNK = 1 << 20
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, TimeoutError)


def cnnkit_home() -> Path:
    return Path(os.environ.get("CNNKIT_HOME") or Path.home() / ".cache" / "cnnkit")


def dataset_cache_dir(name: str) -> Path:
    return cnnkit_home() / "datasets" / name


def offline() -> bool:
    return os.environ.get("CNNKIT_OFFLINE", "") not in ("", "0")


def _present(folder: Path, file: RemoteFile) -> Path | None:
    """The file as distributed, already decompressed by the user, or already unpacked."""
    candidates = [folder / file.name, folder / file.name.removesuffix(".gz")]
    if file.extracts_to:
        candidates.append(folder / file.extracts_to)
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return None


def locate(info: DatasetInfo, download: bool = True) -> dict[str, Path]:
    """Return {file name: path} for every file of `info`, downloading what is missing.

    A path may be the unpacked folder of an archive (`RemoteFile.extracts_to`); readers
    call `unpacked()` to get the folder either way.
    """
    cache = dataset_cache_dir(info.name)
    files = list(info.files)
    if info.extra.get("folder"):  # a user's folder holding the files (catalogued_in): there, and only there
        folder = Path(info.extra["folder"])
        found = {f.name: _present(folder, f) for f in files}
        missing = [name for name, path in found.items() if path is None]
        if missing:
            raise DatasetError(f"{folder} holds some of {info.title}'s files but not {', '.join(missing)}")
        return found  # type: ignore[return-value]
    for folder in (cache, *map(Path, info.system_paths), *_parent_folders(info)):
        found = {f.name: _present(folder, f) for f in files}
        if files and all(found.values()):
            return found  # type: ignore[return-value]
    found = {f.name: _present(cache, f) for f in files}
    missing = [f for f in files if found[f.name] is None]
    errors: list[str] = []
    if missing and download and not offline():
        for f in missing:
            try:
                found[f.name] = fetch(f, cache)
            except DatasetError as e:
                errors.append(str(e))
        missing = [f for f in files if found[f.name] is None]
    if missing:
        raise DatasetNotFound(missing_message(info, missing, cache, errors))
    return found  # type: ignore[return-value]


def _parent_folders(info: DatasetInfo) -> list[Path]:
    """A variant (cifar-100-coarse, emnist-letters) reuses the files its main record downloaded."""
    return [dataset_cache_dir(info.parent)] if info.parent else []


def missing_message(info: DatasetInfo, missing: list[RemoteFile], cache: Path, errors=()) -> str:
    why = "no network access (CNNKIT_OFFLINE is set)" if offline() else "the download failed"
    lines = [f"{info.title}: {len(missing)} file(s) missing and could not be downloaded ({why})."]
    lines += [f"  ({e})" for e in list(errors)[:2]]
    lines.append(f"Download these files and put them in {cache}/ :")
    for f in missing:
        check = [f"sha256 {f.sha256}"] if f.sha256 else []
        check += [f"md5 {f.md5}"] if f.md5 else []
        size = f", {f.size:,} bytes" if f.size else ""
        lines.append(f"  {f.name}  from {' or '.join(f.urls)}  ({', '.join(check) or 'no published checksum'}{size})")
    if info.system_paths:
        lines.append(f"or install the system copy into {', '.join(info.system_paths)}"
                     + (" (Debian: apt-get install dataset-fashion-mnist)" if info.name == "fashion-mnist" else ""))
    lines.append("(CNNKIT_HOME moves the cache folder.)")
    return "\n".join(lines)


def manual_root(info: DatasetInfo) -> Path:
    """The folder holding a manually downloaded dataset, or DatasetNotFound with the steps."""
    if info.extra.get("folder"):  # a user's folder holding the files (catalogued_in)
        return Path(info.extra["folder"])
    cache = dataset_cache_dir(info.name)
    expect = tuple(info.extra.get("expect", ()))
    for folder in (cache, *map(Path, info.system_paths)):
        if any((folder / e).exists() for e in expect) or (not expect and folder.is_dir() and any(folder.iterdir())):
            return folder
    layout = " or ".join(f"{cache}/{e}" for e in expect) or f"{cache}/"
    raise DatasetNotFound(
        f"{info.title} cannot be downloaded automatically ({info.access or 'manual download'}).\n"
        f"  1. Get it from {info.homepage}\n"
        f"  2. {info.manual_steps or 'unpack it into the folder below'}.\n"
        f"  Folder: {cache}/  (expected: {layout})\n"
        f"  Or train on any folder directly: cnnkit train --data /path/to/folder"
    )


def _distinctive(name: str) -> bool:
    """A catalogued file name that says which dataset it is (sign_mnist_train.csv), not a generic
    one any folder may hold (train, train.csv)."""
    base = PurePosixPath(name).name
    return "." in base and not base.startswith(("train.", "test."))


def _identified(root: Path, info: DatasetInfo) -> bool:
    """The smallest of `info`'s files in `root` is, byte for byte, the one the authors published
    (its checksum) or the one in the record's system copy (re-compressed by the packager)."""
    present = [(f, _present(root, f)) for f in info.files]
    present = [(f, p) for f, p in present if p is not None and p.is_file()]
    if not present:
        return False
    file, path = min(present, key=lambda fp: fp[1].stat().st_size)
    if path.name == file.name and (file.sha256 or file.md5):
        algorithm, digest = ("sha256", file.sha256) if file.sha256 else ("md5", file.md5)
        if file_digest(path, algorithm) == digest:
            return True
    for folder in map(Path, info.system_paths):
        copy = folder / path.name
        if copy.is_file() and copy.stat().st_size == path.stat().st_size \
                and file_digest(copy, "sha256") == file_digest(path, "sha256"):
            return True
    return False


def catalogued_in(root: Path) -> DatasetInfo | None:
    """The catalog record whose files `root` holds under their catalogued names, set to be read from
    `root` itself (`extra["folder"]`, which `locate` and `manual_root` honour); None if none does.

    Datasets that share file names (MNIST, Fashion-MNIST and KMNIST's IDX files) are told apart by
    the published checksum or the system copy; files neither identifies are read in that format
    with numbered classes and statistics computed from them.
    """
    import dataclasses

    from .catalog import list_datasets

    matches = []
    for info in list_datasets():
        if not info.trainable or info.parent:  # a variant reads its main record's files
            continue
        if info.files:
            if all(_present(root, f) for f in info.files):
                matches.append(info)
        elif any(_distinctive(e) and (root / e).is_file() for e in info.extra.get("expect", ())):
            matches.append(info)
    if not matches:
        return None
    extra = {"folder": str(root)}
    if len(matches) == 1:
        found = matches[0]
        return dataclasses.replace(found, title=f"{found.title} (files in {root})", extra={**found.extra, **extra})
    verified = [i for i in matches if _identified(root, i)]
    if len(verified) == 1:
        found = verified[0]
        return dataclasses.replace(found, title=f"{found.title} (files in {root})", extra={**found.extra, **extra})
    layout = " / ".join(i.title for i in matches)
    return dataclasses.replace(matches[0], title=f"files in {root} (the {layout} layout)", class_names=(),
                               mean=(), std=(), accuracy=(), extra={**matches[0].extra, **extra})


# --------------------------------------------------------------------------- verify and fetch


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
        problems.append(f"{path.stat().st_size:,} bytes, expected {file.size:,}")
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


def fetch(file: RemoteFile, folder: Path, timeout: float = 30.0, attempts: int = 3, log=None) -> Path:
    """Download `file` into `folder`: resume a `.part` file, verify, try each mirror in turn.

    A transfer cut short is resumed from where it stopped (up to `attempts` times per
    mirror, as long as each attempt makes progress); a file that fails its checksum is
    removed and the next mirror tried.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target, part = folder / file.name, folder / (file.name + ".part")
    log = log or (lambda msg: print(msg, file=sys.stderr))
    reasons = []
    for url in file.urls:
        log(f"downloading {file.name} from {url}")
        done = False
        for _ in range(attempts):
            before = part.stat().st_size if part.exists() else 0
            try:
                _download(url, part, timeout, file.size, log)
                done = True
                break
            except urllib.error.HTTPError as e:
                reasons.append(f"{url}: HTTP {e.code}")
                break  # the server said no: another try will not change its mind
            except _NETWORK_ERRORS as e:
                reasons.append(f"{url}: {getattr(e, 'reason', None) or e!r}")
                if not part.exists() or part.stat().st_size <= before:
                    break  # no progress: go to the next mirror
        if not done:
            continue
        try:
            verify(part, file)  # before the rename: a file under its final name is always a checked one
        except DatasetError as e:
            reasons.append(str(e))
            continue
        os.replace(part, target)
        return target
    raise DatasetError(f"could not download {file.name}: " + "; ".join(reasons))


def _download(url: str, part: Path, timeout: float, size: int | None, log=None) -> None:
    start = part.stat().st_size if part.exists() else 0
    if size is not None and start >= size:
        if start == size:
            return  # complete already; verify() decides whether it is right
        part.unlink()
        start = 0
    request = urllib.request.Request(url, headers={"User-Agent": "cnnkit"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        resumed = bool(start) and response.status == 206
        expected = response.headers.get("Content-Length")
        written, total = 0, size or (int(expected) + (start if resumed else 0) if expected else None)
        step, shown = max(total // 20, CHUNK) if total else 0, 0
        with open(part, "ab" if resumed else "wb") as out:
            for block in iter(lambda: response.read(CHUNK), b""):
                out.write(block)
                written += len(block)
                if log and total and total > 20 * CHUNK and written - shown >= step:
                    shown = written
                    done = written + (start if resumed else 0)
                    log(f"  {part.name.removesuffix('.part')}: {100 * done // total}% "
                        f"({done / 2**20:,.0f} of {total / 2**20:,.0f} MiB)")
        if expected is not None and written < int(expected):
            raise http.client.IncompleteRead(b"", int(expected) - written)


# --------------------------------------------------------------------------- archives


def unpacked(path: Path, file: RemoteFile) -> Path:
    """The folder (or file) an archive unpacks to, unpacking it once, safely, next to it."""
    folder = path.parent
    if path.name != file.name:  # found already unpacked
        return path
    target = folder / file.extracts_to if file.extracts_to else folder
    if file.extracts_to and target.exists():
        return target
    extract(path, folder)
    if file.extracts_to and not target.exists():
        raise DatasetError(f"{path} did not unpack to {file.extracts_to}; is it the right archive?")
    return target


def _check_member(archive: Path, name: str) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or ".." in pure.parts or (pure.parts and pure.parts[0].endswith(":")):
        raise DatasetError(f"{archive} holds an unsafe path {name!r} (absolute or with '..'); not unpacking it")


def extract(archive: Path, folder: Path) -> None:
    """Unpack a .tar(.gz) or .zip into `folder`, refusing paths and links that leave it.

    Unpacks into a temporary folder first, then moves the top-level entries into
    place, so an interrupted extraction never looks complete.
    """
    tmp = folder / f".unpacking-{archive.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                for info in z.infolist():
                    _check_member(archive, info.filename)
                    if (info.external_attr >> 16) & 0o170000 == 0o120000:
                        raise DatasetError(f"{archive} holds a symbolic link {info.filename!r}; not unpacking it")
                z.extractall(tmp)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as t:
                for member in t.getmembers():
                    _check_member(archive, member.name)
                    if member.issym() or member.islnk():
                        link = PurePosixPath(member.name).parent / member.linkname if member.issym() \
                            else PurePosixPath(member.linkname)
                        if PurePosixPath(member.linkname).is_absolute() or _escapes(link):
                            raise DatasetError(f"{archive} holds a link {member.name!r} -> {member.linkname!r} "
                                               "that leaves the folder; not unpacking it")
                    elif not (member.isfile() or member.isdir()):
                        raise DatasetError(f"{archive} holds a special file {member.name!r}; not unpacking it")
                t.extractall(tmp, filter="data")
        else:
            raise DatasetError(f"{archive} is neither a zip nor a tar archive; delete it and fetch it again")
        for entry in tmp.iterdir():
            _merge(entry, folder / entry.name)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError) as e:
        raise DatasetError(f"{archive} is damaged ({e}); delete it and fetch it again") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _merge(src: Path, dest: Path) -> None:
    """Move `src` to `dest`; folders are merged (two GTSRB archives both unpack into GTSRB/)."""
    if src.is_dir() and dest.is_dir() and not dest.is_symlink():
        for child in src.iterdir():
            _merge(child, dest / child.name)
        return
    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    elif dest.exists() or dest.is_symlink():
        dest.unlink()
    os.replace(src, dest)


def _escapes(path: PurePosixPath) -> bool:
    depth = 0
    for part in path.parts:
        depth += -1 if part == ".." else (0 if part == "." else 1)
        if depth < 0:
            return True
    return False
