"""The catalog: one record per dataset of the guide, and the lookup by name or alias.

A record holds the facts (level, task, shape, classes, sizes, licence), how to
obtain the files (automatic download with checksums, a system package path, or
manual download with instructions) and which reader turns them into arrays. The
trainer only ever sees `load_dataset(name)`, so the catalog grows without
touching it. Facts come from shared/datasets-reference.md.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field

from ..errors import DatasetError


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset's distribution, with where to fetch it and how to check it."""

    name: str
    urls: tuple[str, ...]  # mirrors, tried in order
    md5: str | None = None  # of the file exactly as downloaded
    sha256: str | None = None
    size: int | None = None  # bytes, when the authors publish it
    extracts_to: str = ""  # an archive: the folder it unpacks to (its presence counts as the file)


@dataclass(frozen=True)
class DatasetInfo:
    name: str  # lower-case with hyphens: the name users type
    title: str
    level: str  # beginner | intermediate | advanced | builtin
    task: str  # classification | detection | segmentation | video | ...
    shape: tuple[int, int, int] | None  # C, H, W when fixed
    num_classes: int
    class_names: tuple[str, ...] = ()
    train_size: int | None = None
    test_size: int | None = None
    val_size: int | None = None
    homepage: str = ""
    license: str = ""
    obtain: str = "manual"  # builtin | download | manual | none (no pixels to train on)
    files: tuple[RemoteFile, ...] = ()
    system_paths: tuple[str, ...] = ()  # folders a system package installs the files to
    reader: str = ""  # key into data.dataset.READERS
    aliases: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()  # per-channel normalisation on the 0-1 scale; () = computed
    std: tuple[float, ...] = ()  # from the training split when loaded (no published statistics)
    load_size: tuple[int, int] | None = None  # (H, W) variable-size images are resized to
    parent: str = ""  # a variant (EMNIST split, CIFAR-100 coarse) names its main record
    format: str = ""  # the on-disk format, in words
    access: str = ""  # account or terms needed to get the files
    accuracy: tuple[tuple[str, str], ...] = ()  # (level, published result)
    manual_steps: str = ""  # what to do by hand when obtain == manual
    notes: str = ""
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def trainable(self) -> bool:
        return self.task == "classification" and bool(self.reader)

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        """C x H x W of the arrays the reader returns (after resizing variable-size images)."""
        if self.load_size is not None:
            channels = self.shape[0] if self.shape else 3
            return (channels, *self.load_size)
        return self.shape


_REGISTRY: dict[str, DatasetInfo] = {}
_PLACES: dict[str, str] = {}  # name -> where it was registered (for the duplicate error)


def register(info: DatasetInfo) -> DatasetInfo:
    """Add a record. Its name and aliases must be new, in every spelling `resolve_name` accepts
    (case, '-', '_', spaces): a clash raises DatasetError naming both places."""
    caller = sys._getframe(1)
    place = f"{caller.f_globals.get('__name__', '?')} line {caller.f_lineno}"
    for key, what in ((info.name, "name"), *((a, "alias") for a in info.aliases)):
        for other in _REGISTRY.values():
            if _squash(key) in {_squash(other.name), *map(_squash, other.aliases)}:
                label = f"{key!r} is already registered" if what == "name" else f"alias {key!r} of {info.name!r} " \
                    "is already registered"
                raise DatasetError(f"dataset {label} as {other.name!r} (by {_PLACES.get(other.name, '?')}); "
                                   f"{place} cannot register it again: choose another name")
    _REGISTRY[info.name] = info
    _PLACES[info.name] = place
    return info


def _normalise(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def resolve_name(name: str) -> str:
    """Return the catalog name for `name` or an alias (`fashion_mnist`, `cifar10`, ...)."""
    key = _normalise(name)
    if key in _REGISTRY:
        return key
    for info in _REGISTRY.values():
        if key in info.aliases or _squash(key) in {_squash(info.name), *map(_squash, info.aliases)}:
            return info.name
    close = difflib.get_close_matches(key, list(_REGISTRY), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise DatasetError(
        f"unknown dataset {name!r}.{hint} `cnnkit datasets` lists them all; "
        "a path to an image folder works too."
    )


def get_info(name: str) -> DatasetInfo:
    return _REGISTRY[resolve_name(name)]


def list_datasets() -> list[DatasetInfo]:
    return list(_REGISTRY.values())


# --------------------------------------------------------------------------- records

# The records live in one module per level of the guide; importing them registers them
# (after the definitions above, which they use).
from . import catalog_builtin, catalog_level1, catalog_level2, catalog_level3  # noqa: E402,F401
