"""Readers for catalogued image-file datasets: Kaggle-style folders, Dogs vs Cats, GTSRB, Places365.

They return FileLists; `load_dataset` decodes them into memory (tensor path) or
streams them, depending on the decoded size.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from .arrays import FileList
from .catalog import DatasetInfo
from .dataset import ReadOptions, reader
from .folder import images_in, read_folder, subdirs
from .sources import dataset_cache_dir, locate, manual_root, unpacked


def _size(info: DatasetInfo, options: ReadOptions) -> tuple[int, int]:
    return tuple(options.image_size or info.load_size or info.shape[1:])  # type: ignore[return-value]


def _channels(info: DatasetInfo) -> int:
    return info.shape[0] if info.shape else 3


@reader("image-folder")
def read_catalog_folder(info: DatasetInfo, options: ReadOptions) -> dict:
    """Flowers, Intel, ASL Alphabet, ImageNet: class folders, with the record's class order."""
    root = manual_root(info)
    raw = read_folder(root, _size(info, options), strict=options.strict, channels=_channels(info),
                      test_fraction=info.extra.get("test_fraction", 0.2),
                      val_as_test=info.extra.get("val_as_test", False))
    if info.class_names and sorted(raw["class_names"]) != sorted(info.class_names):
        found = ", ".join(raw["class_names"][:8])
        raise DatasetError(f"{root}: found class folders {found}..., expected {', '.join(info.class_names[:8])}...; "
                           f"is this {info.title}?")
    if info.class_names and raw["class_names"] != list(info.class_names):
        _reorder(raw, list(info.class_names))
    return raw


def _reorder(raw: dict, names: list[str]) -> None:
    """Relabel every split from the folder order to the official class order."""
    mapping = np.asarray([names.index(n) for n in raw["class_names"]])
    for key in ("train", "val", "test"):
        if key in raw:
            raw[key].labels = raw[key].labels.new_tensor(mapping[raw[key].labels.numpy()])
    raw["class_names"] = names


@reader("dogs-vs-cats")
def read_dogs_vs_cats(info: DatasetInfo, options: ReadOptions) -> dict:
    """Kaggle `train/cat.123.jpg` (label in the file name) or Microsoft's `PetImages/Cat/123.jpg`."""
    root = manual_root(info)
    pets = root / "PetImages"
    if pets.is_dir():
        raw = read_folder(pets, _size(info, options), strict=options.strict, channels=3,
                          class_names=["Cat", "Dog"])
        raw["class_names"] = ["cat", "dog"]
        return raw
    raw = read_folder(root / "train", _size(info, options), strict=options.strict, channels=3)
    if raw["class_names"] != ["cat", "dog"]:
        raise DatasetError(f"{root / 'train'}: expected files named cat.<n>.jpg and dog.<n>.jpg, "
                           f"found labels {raw['class_names']}")
    return raw


# --------------------------------------------------------------------------- GTSRB


def _gtsrb_csv(path: Path, folder: Path, with_class: bool = True) -> tuple[list[str], list[int], list]:
    paths, labels, boxes = [], [], []
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = csv.DictReader(f, delimiter=";")
        for row in rows:
            try:
                x1, y1, x2, y2 = (int(row[k]) for k in ("Roi.X1", "Roi.Y1", "Roi.X2", "Roi.Y2"))
                label = int(row["ClassId"]) if with_class else -1
            except (KeyError, ValueError, TypeError) as e:
                raise DatasetError(f"{path}: row {rows.line_num} is not Filename;Width;Height;Roi.X1;Roi.Y1;"
                                   f"Roi.X2;Roi.Y2;ClassId ({e})") from e
            paths.append(str(folder / row["Filename"]))
            labels.append(label)
            boxes.append((x1, y1, x2 + 1, y2 + 1))  # the ROI corners are inclusive
    return paths, labels, boxes


@reader("gtsrb")
def read_gtsrb(info: DatasetInfo, options: ReadOptions) -> dict:
    found = locate(info)
    train_zip, test_zip, gt_zip = info.files
    training = unpacked(found[train_zip.name], train_zip)  # GTSRB/Training/000NN/
    final_test = unpacked(found[test_zip.name], test_zip)  # GTSRB/Final_Test/
    gt_csv = unpacked(found[gt_zip.name], gt_zip)  # GT-final_test.csv
    size, out = _size(info, options), {}
    paths, labels, boxes = [], [], []
    for class_dir in subdirs(training):
        csvs = sorted(class_dir.glob("GT-*.csv"))
        if csvs:
            p, lab, b = _gtsrb_csv(csvs[0], class_dir)
        else:  # no annotation file: every image of the folder, uncropped
            p = [str(x) for x in images_in(class_dir)]
            lab, b = [int(class_dir.name)] * len(p), [None] * len(p)
        paths += p
        labels += lab
        boxes += b
    if not paths:
        raise DatasetError(f"{training} holds no class folders 00000..00042 with .ppm images")
    out["train"] = FileList(paths, np.asarray(labels), size, 3, boxes)
    images_dir = final_test / "Images" if (final_test / "Images").is_dir() else final_test
    p, lab, b = _gtsrb_csv(gt_csv, images_dir)
    out["test"] = FileList(p, np.asarray(lab), size, 3, b)
    return out


# --------------------------------------------------------------------------- Places365


def _file_list(list_path: Path, image_root: Path, size) -> FileList:
    """Places365 file list: '<relative path> <class index>' per line ('/a/airfield/1.jpg 0')."""
    if not list_path.is_file():
        raise DatasetError(f"{list_path} is missing; it comes from filelist_places365-standard.tar "
                           "(delete the unpacked files and run again)")
    paths, labels = [], []
    with open(list_path, encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or not parts[1].isdigit():
                raise DatasetError(f"{list_path}:{line_number}: expected '<path> <class index>', got {line.strip()!r}")
            paths.append(str(image_root / parts[0].lstrip("/")))
            labels.append(int(parts[1]))
    return FileList(paths, np.asarray(labels), size, 3)


@reader("places365")
def read_places365(info: DatasetInfo, options: ReadOptions) -> dict:
    size = _size(info, options)
    easy = dataset_cache_dir(info.name)
    if (easy / "train").is_dir():  # the "easyformat" layout train/<class>/, val/<class>/ placed by hand
        return read_folder(easy, size, strict=options.strict, channels=3, val_as_test=True)
    found = locate(info)
    lists, train_tar, val_tar = info.files
    categories = unpacked(found[lists.name], lists)
    folder = categories.parent
    names = []
    for line in categories.read_text(encoding="utf-8").splitlines():
        if line.strip():
            path, index = line.rsplit(maxsplit=1)
            names.append((int(index), path.strip("/")))
    class_names = [n for _, n in sorted(names)]
    data_root = unpacked(found[train_tar.name], train_tar)
    val_root = unpacked(found[val_tar.name], val_tar)
    return {
        "train": _file_list(folder / "places365_train_standard.txt", data_root, size),
        "test": _file_list(folder / "places365_val.txt", val_root, size),
        "class_names": class_names,
    }
