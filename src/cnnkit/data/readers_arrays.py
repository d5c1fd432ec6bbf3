"""Readers for the array formats: digits, IDX (MNIST family, EMNIST), K49 .npz, CIFAR pickles,
SVHN .mat and STL-10 binaries. Each returns uint8 ImageArrays (the tensor path).

Quirks handled here, per shared/datasets-reference.md: EMNIST images are stored
transposed and its letters split labels 1-26; CIFAR batches are Python 2 pickles
(read with a restricted unpickler that only builds NumPy arrays, never runs code);
SVHN's .mat is H x W x C x N with label 10 for digit 0; STL-10 is column-major with
labels 1-10.
"""

from __future__ import annotations

import gzip
import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetError
from .arrays import ImageArrays, stratified_split, to_tensor_images
from .catalog import DatasetInfo
from .dataset import reader
from .idx import parse_idx, read_idx
from .sources import locate, unpacked


def _arrays(images: np.ndarray, labels: np.ndarray) -> ImageArrays:
    return ImageArrays(to_tensor_images(images), torch.from_numpy(np.asarray(labels, dtype=np.int64)))


def _check_pair(info: DatasetInfo, split: str, images, labels) -> None:
    if len(images) != len(labels):
        raise DatasetError(f"{info.name}: {len(images)} {split} images but {len(labels)} labels; "
                           "one of the files is from another version, fetch both again")


@reader("digits")
def read_digits(info: DatasetInfo) -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # Pixel values are counts 0..16 of a 4x4 block; scale to the 0..255 of every other image.
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    everything = _arrays(images, digits.target)
    train_idx, test_idx = stratified_split(digits.target, 0.2, seed=0)
    return {"train": everything.subset(train_idx), "test": everything.subset(test_idx)}


@reader("idx")
def read_idx_dataset(info: DatasetInfo) -> dict:
    paths = locate(info)
    arrays = {"-".join(name.split("-")[:2]): read_idx(p) for name, p in paths.items()}
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels = arrays[f"{prefix}-images"], arrays[f"{prefix}-labels"]
        _check_pair(info, split, images, labels)
        out[split] = _arrays(images, labels)
    return out


def _emnist_member(root: Path, zip_path: Path | None, member: str) -> np.ndarray:
    """Read gzip/<member> from the unpacked folder, or straight out of gzip.zip (no 536 MiB unpack)."""
    for candidate in (root / member, root / member.removesuffix(".gz")):
        if candidate.is_file():
            return read_idx(candidate)
    if zip_path is not None and zip_path.is_file():
        with zipfile.ZipFile(zip_path) as z:
            try:
                data = z.read(f"gzip/{member}")
            except KeyError:
                raise DatasetError(f"{zip_path} has no gzip/{member}; is it the EMNIST gzip.zip?") from None
        return parse_idx(gzip.decompress(data), f"{zip_path}:gzip/{member}")
    raise DatasetError(f"EMNIST file {member} is missing from {root}")


@reader("emnist")
def read_emnist(info: DatasetInfo) -> dict:
    split = info.extra["split"]
    (path,) = locate(info).values()
    is_zip = path.name == "gzip.zip"
    root = path.parent / "gzip" if is_zip else path
    out = {}
    for part in ("train", "test"):
        images = _emnist_member(root, path if is_zip else None, f"emnist-{split}-{part}-images-idx3-ubyte.gz")
        labels = _emnist_member(root, path if is_zip else None, f"emnist-{split}-{part}-labels-idx1-ubyte.gz")
        _check_pair(info, part, images, labels)
        images = np.ascontiguousarray(images.transpose(0, 2, 1))  # stored transposed
        labels = labels.astype(np.int64)
        if split == "letters":
            labels = labels - 1  # 1..26 in the files, 0 unused
        out[part] = _arrays(images, labels)
    return out


@reader("npz")
def read_npz(info: DatasetInfo) -> dict:
    paths = locate(info)

    def load(name: str) -> np.ndarray:
        try:
            with np.load(paths[name], allow_pickle=False) as z:
                return z["arr_0"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise DatasetError(f"{paths[name]} cannot be read as .npz with arr_0 ({e}); fetch it again") from e

    prefix = info.files[0].name.split("-")[0]
    out = {}
    for split in ("train", "test"):
        images, labels = load(f"{prefix}-{split}-imgs.npz"), load(f"{prefix}-{split}-labels.npz")
        _check_pair(info, split, images, labels)
        out[split] = _arrays(images, labels)
    return out


# --------------------------------------------------------------------------- CIFAR


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Builds the dicts, lists and NumPy arrays of the CIFAR batches; refuses any other class."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} (only NumPy arrays are allowed)")
        return super().find_class(module, name)


def read_cifar_pickle(path: Path, images_expected: int | None = None) -> dict:
    """One CIFAR python batch -> dict with str keys; clear errors for truncated or foreign files."""
    try:
        with open(path, "rb") as f:
            obj = _NumpyOnlyUnpickler(io.BytesIO(f.read()), encoding="latin1").load()
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as e:
        expected = f"; a batch of {images_expected:,} images is at least {images_expected * 3072:,} bytes" \
            if images_expected else ""
        raise DatasetError(f"{path} is truncated or not a CIFAR pickle ({type(e).__name__}: {e}); it has "
                           f"{path.stat().st_size:,} bytes{expected}. Delete it and fetch the archive again") from e
    if not isinstance(obj, dict):
        raise DatasetError(f"{path} is not a CIFAR batch (a {type(obj).__name__}, not a dict)")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


@reader("cifar")
def read_cifar(info: DatasetInfo) -> dict:
    (file,) = info.files
    root = unpacked(locate(info)[file.name], file)
    if info.num_classes == 10:
        parts = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
        key, meta_name, names_key, per_file = "labels", "batches.meta", "label_names", 10000
    else:
        parts = {"train": ["train"], "test": ["test"]}
        key = f"{info.extra['labels']}_labels"
        meta_name, names_key, per_file = "meta", f"{info.extra['labels']}_label_names", None
    out = {}
    for split, names in parts.items():
        images, labels = [], []
        for name in names:
            path = root / name
            if not path.is_file():
                raise DatasetError(f"{path} is missing; delete {root} and run again to unpack the archive afresh")
            batch = read_cifar_pickle(path, per_file)
            data = np.asarray(batch["data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3072 or len(data) != len(batch[key]):
                raise DatasetError(f"{path}: data has shape {data.shape}, expected N x 3072 with one label each")
            images.append(data.reshape(-1, 3, 32, 32))  # planar R, G, B; each plane row-major
            labels.append(np.asarray(batch[key], dtype=np.int64))
        out[split] = _arrays(np.concatenate(images), np.concatenate(labels))
    meta = root / meta_name
    if meta.is_file():
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in read_cifar_pickle(meta).get(names_key, [])]
        if len(names) == info.num_classes:
            out["class_names"] = names
    return out


# --------------------------------------------------------------------------- SVHN, STL-10


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    try:
        mat = loadmat(path, variable_names=("X", "y"))
    except (ValueError, OSError, TypeError, EOFError, NotImplementedError) as e:
        raise DatasetError(f"{path} cannot be read as a MATLAB file ({e}); it has {path.stat().st_size:,} "
                           "bytes — delete it and fetch it again") from e
    if "X" not in mat or "y" not in mat:
        raise DatasetError(f"{path} has no X and y variables; is it SVHN format 2 (cropped digits)?")
    x, y = mat["X"], mat["y"].reshape(-1).astype(np.int64)
    if x.ndim != 4 or x.shape[:3] != (32, 32, 3) or x.shape[3] != len(y):
        raise DatasetError(f"{path}: X has shape {x.shape}, expected 32x32x3x{len(y)}")
    y[y == 10] = 0  # the .mat files label digit 0 as 10
    return x.transpose(3, 2, 0, 1), y


@reader("svhn")
def read_svhn(info: DatasetInfo) -> dict:
    paths = locate(info)
    train_x, train_y = read_svhn_mat(paths["train_32x32.mat"])
    if info.extra.get("extra"):
        extra_x, extra_y = read_svhn_mat(paths["extra_32x32.mat"])
        train_x, train_y = np.concatenate([train_x, extra_x]), np.concatenate([train_y, extra_y])
    test_x, test_y = read_svhn_mat(paths["test_32x32.mat"])
    return {"train": _arrays(train_x, train_y), "test": _arrays(test_x, test_y)}


def read_stl_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    x_path, y_path = root / f"{split}_X.bin", root / f"{split}_y.bin"
    for p in (x_path, y_path):
        if not p.is_file():
            raise DatasetError(f"{p} is missing; delete {root} and run again to unpack the archive afresh")
    labels = np.fromfile(y_path, dtype=np.uint8).astype(np.int64) - 1  # 1..10 in the file
    per_image = 3 * 96 * 96
    size = x_path.stat().st_size
    if size != len(labels) * per_image:
        raise DatasetError(f"{x_path} is truncated or corrupt: {size:,} bytes, expected {len(labels) * per_image:,} "
                           f"for {len(labels):,} images of 3x96x96; delete it and unpack again")
    # Column-major within each image, one channel at a time: transpose H and W back.
    images = np.fromfile(x_path, dtype=np.uint8).reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2)
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 9:
        raise DatasetError(f"{y_path} holds labels outside 1..10")
    return np.ascontiguousarray(images), labels


@reader("stl10")
def read_stl10(info: DatasetInfo) -> dict:
    (file,) = info.files
    root = unpacked(locate(info)[file.name], file)
    out = {split: _arrays(*read_stl_split(root, split)) for split in ("train", "test")}
    names = root / "class_names.txt"
    if names.is_file():
        listed = [n.strip() for n in names.read_text().splitlines() if n.strip()]
        if len(listed) == 10:
            out["class_names"] = listed
    return out
