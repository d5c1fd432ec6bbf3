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
    obtain: str = "manual"  # builtin | download | manual
    files: tuple[RemoteFile, ...] = ()
    system_paths: tuple[str, ...] = ()  # folders a system package installs the files to
    reader: str = ""  # key into data.dataset.READERS
    aliases: tuple[str, ...] = ()
    augment: str = "none"  # augmentation preset (data.augment.PRESETS)
    mean: tuple[float, ...] = (0.5,)  # per-channel normalisation, on the 0-1 scale
    std: tuple[float, ...] = (0.5,)
    accuracy: tuple[tuple[str, str], ...] = ()  # (level, published result)
    manual_steps: str = ""  # what to do by hand when obtain == manual
    notes: str = ""
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def trainable(self) -> bool:
        return self.task == "classification" and bool(self.reader)


_REGISTRY: dict[str, DatasetInfo] = {}


def register(info: DatasetInfo) -> DatasetInfo:
    _REGISTRY[info.name] = info
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

register(
    DatasetInfo(
        name="digits",
        title="scikit-learn digits (UCI optical digits, 8x8)",
        level="builtin",
        task="classification",
        shape=(1, 8, 8),
        num_classes=10,
        class_names=tuple(str(i) for i in range(10)),
        train_size=1797,
        homepage="https://archive.ics.uci.edu/dataset/80",
        license="CC BY 4.0",
        obtain="builtin",
        reader="digits",
        augment="none",
        mean=(0.3051,),
        std=(0.3770,),
        notes="Ships inside scikit-learn: 1,797 images, no official split (cnnkit makes a "
        "stratified 70/10/20 train/val/test split with a fixed seed).",
    )
)

_FASHION_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

register(
    DatasetInfo(
        name="fashion-mnist",
        title="Fashion-MNIST (Zalando)",
        level="beginner",
        task="classification",
        shape=(1, 28, 28),
        num_classes=10,
        class_names=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
        train_size=60000,
        test_size=10000,
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        license="MIT",
        obtain="download",
        files=tuple(
            RemoteFile(n, tuple(u + n for u in _FASHION_URLS), md5=m, sha256=s, size=z)
            for n, m, s, z in (
                ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                 "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
                ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe",
                 "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
                ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79",
                 "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
                ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310",
                 "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
            )
        ),
        system_paths=("/usr/share/datasets/fashion-mnist",),
        reader="idx",
        aliases=("fashion_mnist", "fashionmnist", "fmnist"),
        augment="crop-flip",
        mean=(0.2860,),
        std=(0.3530,),
        accuracy=(
            ("human", "83.5%"),
            ("simple CNN", "87.6%-91.6% (2 conv + pooling); ~93.4% (2 conv + BN)"),
            ("ResNet-class", "ResNet18 94.9%; WRN-28-10 95.9%"),
            ("best in the upstream table", "WRN40-4 96.7%"),
        ),
        notes="Debian's dataset-fashion-mnist package installs the four files, re-compressed "
        "(their .gz checksums differ from upstream; the decompressed bytes are identical).",
    )
)
