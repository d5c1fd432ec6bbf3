"""Writers of tiny datasets in the exact on-disk formats the readers take, quirks included.

Used by the tests under tests/data only. Each function writes what the authors
distribute (byte layouts, file names, header rows), never a convenient variant.
"""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image


def idx_bytes(array: np.ndarray) -> bytes:
    """IDX: 0, 0, type 0x08 (uint8), ndim, big-endian uint32 dims, row-major data."""
    array = np.asarray(array, dtype=np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape) + array.tobytes()


def write_idx_gz(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(idx_bytes(array)))
    return path


def write_mnist_family(folder: Path, n_train=40, n_test=20, classes=10, seed=0):
    """The four gzipped IDX files with MNIST's names; returns the arrays written."""
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % classes).astype(np.uint8)
        write_idx_gz(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx_gz(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
        out[prefix] = (images, labels)
    return out


# --------------------------------------------------------------------------- Python 2 pickles (CIFAR)


def _py2_str(b: bytes) -> bytes:
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)


def _py2_int(v: int) -> bytes:
    return (b"K" + bytes([v])) if 0 <= v < 256 else (b"J" + struct.pack("<i", v))


def _py2(obj) -> bytes:
    """Encode like Python 2's cPickle protocol 2 did for the CIFAR batches (str = bytes, numpy arrays)."""
    if isinstance(obj, dict):
        return b"}(" + b"".join(_py2(k) + _py2(v) for k, v in obj.items()) + b"u"
    if isinstance(obj, str):
        return _py2_str(obj.encode("latin1"))
    if isinstance(obj, bytes):
        return _py2_str(obj)
    if isinstance(obj, bool):
        return b"\x88" if obj else b"\x89"
    if isinstance(obj, int):
        return _py2_int(obj)
    if isinstance(obj, list):
        return b"](" + b"".join(_py2(v) for v in obj) + b"e" if obj else b"]"
    if isinstance(obj, np.ndarray):
        assert obj.dtype == np.uint8
        shape = b"(" + b"".join(_py2_int(d) for d in obj.shape) + b"t"
        dtype = (b"cnumpy\ndtype\n" + _py2_str(b"u1") + b"K\x00K\x01\x87R"
                 + b"(K\x03" + _py2_str(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
        return (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + b"K\x00\x85" + _py2_str(b"b")
                + b"\x87R" + b"(K\x01" + shape + dtype + b"\x89" + _py2_str(obj.tobytes()) + b"tb")
    raise TypeError(type(obj))


def py2_pickle(obj) -> bytes:
    return b"\x80\x02" + _py2(obj) + b"."


def tar_gz(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as t:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return path


def zip_file(path: Path, files: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def cifar10_archive(path: Path, per_batch=6, seed=0) -> dict:
    """cifar-10-python.tar.gz with 5 train batches, test_batch and batches.meta (Python 2 pickles)."""
    rng = np.random.default_rng(seed)
    files, arrays = {}, {}
    names = ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]
    for i, name in enumerate(names):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(per_batch)]
        files[f"cifar-10-batches-py/{name}"] = py2_pickle(
            {"batch_label": f"batch {i}", "labels": labels, "data": data,
             "filenames": [f"img_{i}_{j}.png" for j in range(per_batch)]})
        arrays[name] = (data, labels)
    files["cifar-10-batches-py/batches.meta"] = py2_pickle(
        {"num_cases_per_batch": per_batch, "label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                                           "frog", "horse", "ship", "truck"], "num_vis": 3072})
    tar_gz(path, files)
    return arrays


# --------------------------------------------------------------------------- images


def image_bytes(mode="RGB", size=(20, 16), fmt="JPEG", seed=0, value=None) -> bytes:
    rng = np.random.default_rng(seed)
    w, h = size
    if mode in ("I;16",):
        img = Image.fromarray(rng.integers(0, 65535, (h, w), dtype=np.uint16))  # mode I;16
    elif mode == "P":
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB").convert("P")
    else:
        channels = {"L": 1, "RGB": 3, "RGBA": 4, "CMYK": 4}[mode]
        arr = rng.integers(0, 256, (h, w, channels), dtype=np.uint8) if value is None else \
            np.full((h, w, channels), value, dtype=np.uint8)
        img = Image.fromarray(arr[..., 0] if channels == 1 else arr, mode)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return buf.getvalue()


def write_image(path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".ppm": "PPM", ".bmp": "BMP", ".tif": "TIFF"}[path.suffix.lower()]
    path.write_bytes(image_bytes(fmt=fmt, **kw))
    return path


def class_folder(root: Path, classes: list[str], per_class=5, size=(20, 16), mode="RGB", ext=".jpg") -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            write_image(root / name / f"{name}{i}{ext}", mode=mode, size=size, seed=c * 100 + i)
    return root
