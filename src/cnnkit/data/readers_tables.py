"""Readers for CSV pixel tables: Sign Language MNIST and FER-2013 (also its image-folder copy).

Sign Language MNIST: header `label,pixel1..pixel784`, labels 0-24 without 9 (J)
and 25 (Z) -> remapped to 24 contiguous classes. FER-2013: `emotion,pixels,Usage`
(icml_face_data.csv has leading spaces in two column names), pixels are 2,304
space-separated numbers; Usage gives the official train / val (PublicTest) /
test (PrivateTest) splits.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from ..errors import DatasetError
from .arrays import ImageArrays, stratified_split
from .catalog import DatasetInfo
from .dataset import ReadOptions, reader
from .folder import TEST_SEED, read_folder
from .sources import manual_root

SIGN_LABELS = [i for i in range(25) if i != 9]  # file label -> class index by position


def _find(root: Path, *names: str) -> Path | None:
    for name in names:
        for candidate in (root / name, *root.glob(f"*/{name}")):
            if candidate.is_file():
                return candidate
    return None


def read_sign_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
        if header[:2] != ["label", "pixel1"] or len(header) != 785:
            raise DatasetError(f"{path}: header should be label,pixel1,...,pixel784, got {','.join(header[:3])}...")
        try:
            table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
        except ValueError as e:
            raise DatasetError(f"{path} has a malformed row ({e}); is the file complete?") from e
    if table.shape[1] != 785:
        raise DatasetError(f"{path}: rows have {table.shape[1]} values, expected 785")
    raw_labels = table[:, 0]
    bad = sorted(set(raw_labels.tolist()) - set(SIGN_LABELS))
    if bad:
        raise DatasetError(f"{path}: labels {bad} are not Sign Language MNIST labels (0-24 without 9)")
    lookup = np.full(26, -1)
    lookup[SIGN_LABELS] = np.arange(24)
    return table[:, 1:].astype(np.uint8).reshape(-1, 1, 28, 28), lookup[raw_labels]


@reader("sign-mnist")
def read_sign_mnist(info: DatasetInfo) -> dict:
    root = manual_root(info)
    out = {}
    for split in ("train", "test"):
        path = _find(root, f"sign_mnist_{split}.csv")
        if path is None:
            raise DatasetError(f"sign_mnist_{split}.csv is missing from {root}")
        images, labels = read_sign_csv(path)
        out[split] = ImageArrays(torch.from_numpy(images), torch.from_numpy(labels))
    return out


# --------------------------------------------------------------------------- FER-2013

FER_FOLDERS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]  # CSV label order
_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def read_fer_csv(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rows: dict[str, tuple[list[str], list[int]]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader_ = csv.reader(f)
        header = [h.strip() for h in next(reader_, [])]  # icml_face_data.csv: "emotion, Usage, pixels"
        if "pixels" not in header:
            raise DatasetError(f"{path}: no pixels column (header {header}); is it a FER-2013 CSV?")
        col = {name: header.index(name) for name in header}
        for line, row in enumerate(reader_, 2):
            if not row:
                continue
            try:
                usage = row[col["Usage"]].strip() if "Usage" in col else "Training"
                label = int(row[col["emotion"]]) if "emotion" in col else -1
                pixels = row[col["pixels"]]
            except (IndexError, ValueError) as e:
                raise DatasetError(f"{path}:{line}: malformed row ({e})") from e
            split = _USAGE.get(usage)
            if split is None:
                raise DatasetError(f"{path}:{line}: unknown Usage {usage!r} (Training, PublicTest, PrivateTest)")
            rows.setdefault(split, ([], []))
            rows[split][0].append(pixels)
            rows[split][1].append(label)
    out = {}
    for split, (pixels, labels) in rows.items():
        flat = np.array(" ".join(pixels).split(), dtype=np.uint8)
        if flat.size != len(pixels) * 2304:
            raise DatasetError(f"{path}: the {split} rows hold {flat.size:,} pixel values, expected "
                               f"{len(pixels) * 2304:,} (2,304 = 48x48 per row)")
        out[split] = (flat.reshape(-1, 1, 48, 48), np.asarray(labels, dtype=np.int64))
    return out


@reader("fer2013")
def read_fer2013(info: DatasetInfo, options: ReadOptions) -> dict:
    root = manual_root(info)
    path = _find(root, "fer2013.csv", "icml_face_data.csv")
    if path is not None:
        parts = read_fer_csv(path)
    elif (p := _find(root, "train.csv")) is not None:
        parts = read_fer_csv(p)  # the current competition files: test.csv has no labels
        images, labels = parts["train"]
        keep, held = stratified_split(labels, 0.1, TEST_SEED)
        parts = {"train": (images[keep], labels[keep]), "test": (images[held], labels[held])}
    else:  # Kaggle msambare copy: train/<emotion>/*.jpg, test/<emotion>/*.jpg
        raw = read_folder(root, (48, 48), strict=options.strict, channels=1, class_names=FER_FOLDERS)
        raw["class_names"] = list(info.class_names)
        return raw
    if "train" not in parts or "test" not in parts:
        raise DatasetError(f"{path} lacks Training or PrivateTest rows; is the file complete?")
    return {split: ImageArrays(torch.from_numpy(x), torch.from_numpy(y)) for split, (x, y) in parts.items()}
