"""Readers of the array formats, each on tiny files in the real format (quirks included)."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch
from formats_writer import (
    cifar10_archive,
    idx_bytes,
    py2_pickle,
    tar_gz,
    write_idx_gz,
    write_mnist_family,
    zip_file,
)
from scipy.io import savemat

from cnnkit.data import load_dataset
from cnnkit.data.idx import read_idx
from cnnkit.data.readers_arrays import read_cifar_pickle
from cnnkit.data.sources import dataset_cache_dir
from cnnkit.errors import DatasetError


def test_idx_mnist_from_the_cache_folder():
    arrays = write_mnist_family(dataset_cache_dir("mnist"), n_train=50, n_test=20)
    data = load_dataset("mnist", val_fraction=0.2)
    assert data.path == "tensor" and data.input_shape == (1, 28, 28)
    assert len(data.train) + len(data.val) == 50 and len(data.test) == 20
    assert torch.equal(data.test.images[:, 0], torch.from_numpy(arrays["t10k"][0]))
    assert data.class_names == [str(i) for i in range(10)] and data.mean == (0.1307,)


def test_idx_accepts_decompressed_files_and_kmnist_names(tmp_path):
    folder = dataset_cache_dir("kmnist")
    write_mnist_family(folder, n_train=30, n_test=10)
    for p in folder.glob("*.gz"):  # a user who gunzipped them
        p.with_suffix("").write_bytes(gzip.decompress(p.read_bytes()))
        p.unlink()
    data = load_dataset("kuzushiji-mnist")
    assert data.class_names[:3] == ["o", "ki", "su"] and len(data.test) == 10


def test_truncated_idx_names_the_file_and_the_expected_size(tmp_path):
    raw = idx_bytes(np.zeros((10, 28, 28), np.uint8))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(raw[:-100])
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte is truncated.*7,756 bytes, expected 7,856"):
        read_idx(path)
    cut = tmp_path / "cut-idx1-ubyte.gz"
    cut.write_bytes(gzip.compress(raw)[:50])
    with pytest.raises(DatasetError, match="cut-idx1-ubyte.gz cannot be read"):
        read_idx(cut)


def _emnist_zip(path, split, n_train=52, n_test=13, labels_from=1, classes=26):
    rng = np.random.default_rng(1)
    files, stored = {}, {}
    for part, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % classes + labels_from).astype(np.uint8)
        files[f"gzip/emnist-{split}-{part}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images))
        files[f"gzip/emnist-{split}-{part}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(labels))
        stored[part] = (images, labels)
    files[f"gzip/emnist-{split}-mapping.txt"] = b"1 65 97\n2 66 98\n"
    zip_file(path, files)
    return stored


def test_emnist_letters_read_from_the_zip_transposed_and_shifted():
    stored = _emnist_zip(dataset_cache_dir("emnist-balanced") / "gzip.zip", "letters")
    data = load_dataset("emnist-letters", val_fraction=0.5)  # a variant finds its parent's download
    images, labels = stored["test"]
    assert data.num_classes == 26 and data.class_names[0] == "A"
    assert torch.equal(data.test.labels, torch.from_numpy(labels.astype(np.int64) - 1))  # 1..26 -> 0..25
    assert torch.equal(data.test.images[3, 0], torch.from_numpy(images[3].T.copy()))  # stored transposed


def test_emnist_balanced_from_unpacked_folder():
    folder = dataset_cache_dir("emnist-balanced") / "gzip"
    rng = np.random.default_rng(0)
    for part, n in (("train", 94), ("test", 47)):
        write_idx_gz(folder / f"emnist-balanced-{part}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx_gz(folder / f"emnist-balanced-{part}-labels-idx1-ubyte.gz", np.arange(n) % 47)
    data = load_dataset("emnist", val_fraction=0.5)
    assert data.num_classes == 47 and int(data.test.labels.max()) == 46
    assert data.class_names[36:] == list("abdefghnqrt")


def test_kuzushiji49_npz():
    folder = dataset_cache_dir("kuzushiji-49")
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for part, n in (("train", 98), ("test", 49)):
        np.savez_compressed(folder / f"k49-{part}-imgs.npz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        np.savez_compressed(folder / f"k49-{part}-labels.npz", np.arange(n) % 49)
    data = load_dataset("k49", val_fraction=0.5)
    assert data.num_classes == 49 and len(data.test) == 49


def test_cifar10_python2_pickles_in_the_real_archive():
    arrays = cifar10_archive(dataset_cache_dir("cifar-10") / "cifar-10-python.tar.gz", per_batch=6)
    data = load_dataset("cifar10", val_fraction=0.2)
    assert len(data.train) + len(data.val) == 30 and len(data.test) == 6
    raw, labels = arrays["test_batch"]
    # planar R, G, B rows -> C x H x W
    assert torch.equal(data.test.images[2], torch.from_numpy(raw[2].reshape(3, 32, 32)))
    assert data.test.labels.tolist() == labels
    assert data.class_names[1] == "automobile"
    assert (dataset_cache_dir("cifar-10") / "cifar-10-batches-py" / "data_batch_5").is_file()


def test_cifar100_fine_and_coarse_labels():
    rng = np.random.default_rng(0)
    files = {}
    for split, n in (("train", 200), ("test", 100)):
        files[f"cifar-100-python/{split}"] = py2_pickle({
            "filenames": [f"{i}.png" for i in range(n)], "batch_label": split,
            "fine_labels": [i % 100 for i in range(n)], "coarse_labels": [i % 20 for i in range(n)],
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)})
    fine = [f"fine{i:02d}" for i in range(100)]
    files["cifar-100-python/meta"] = py2_pickle({"fine_label_names": fine,
                                                 "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    tar_gz(dataset_cache_dir("cifar-100") / "cifar-100-python.tar.gz", files)
    fine_data = load_dataset("cifar-100", val_fraction=0.5)
    coarse = load_dataset("cifar100-coarse", val_fraction=0.5)
    assert fine_data.num_classes == 100 and fine_data.class_names[7] == "fine07"
    assert coarse.num_classes == 20 and coarse.class_names[0] == "coarse0"
    assert coarse.test.labels.tolist() == [i % 20 for i in range(100)]


def test_truncated_and_hostile_pickles_are_refused(tmp_path):
    batch = py2_pickle({"labels": [1, 2], "data": np.zeros((2, 3072), np.uint8)})
    cut = tmp_path / "data_batch_1"
    cut.write_bytes(batch[: len(batch) // 2])
    with pytest.raises(DatasetError, match=r"data_batch_1 is truncated.*at least 30,720,000 bytes"):
        read_cifar_pickle(cut, 10000)
    evil = tmp_path / "test_batch"
    evil.write_bytes(pickle.dumps({"x": print}, protocol=2))
    with pytest.raises(DatasetError, match="refusing to load __builtin__.print"):
        read_cifar_pickle(evil)


def _svhn(path, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
    y = (np.arange(n) % 10 + 1).astype(np.uint8).reshape(n, 1)  # 1..10, 10 = digit 0
    savemat(path, {"X": x, "y": y})
    return x, y


def test_svhn_mat_label_10_is_zero_and_the_extra_split():
    folder = dataset_cache_dir("svhn")
    folder.mkdir(parents=True)
    _svhn(folder / "train_32x32.mat", 20, 0)
    x, y = _svhn(folder / "test_32x32.mat", 10, 1)
    data = load_dataset("svhn", val_fraction=0.5)
    assert data.test.labels.tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
    assert torch.equal(data.test.images[4], torch.from_numpy(x[:, :, :, 4].transpose(2, 0, 1).copy()))
    extra = dataset_cache_dir("svhn-extra")
    extra.mkdir(parents=True)
    for name in ("train_32x32.mat", "test_32x32.mat"):
        (extra / name).write_bytes((folder / name).read_bytes())
    _svhn(extra / "extra_32x32.mat", 30, 2)
    both = load_dataset("svhn-extra", val_fraction=0.2)
    assert len(both.train) + len(both.val) == 50


def test_svhn_truncated_mat_is_a_clear_error():
    folder = dataset_cache_dir("svhn")
    folder.mkdir(parents=True)
    _svhn(folder / "train_32x32.mat", 20, 0)
    _svhn(folder / "test_32x32.mat", 10, 1)
    path = folder / "test_32x32.mat"
    path.write_bytes(path.read_bytes()[:3000])
    with pytest.raises(DatasetError, match="test_32x32.mat"):
        load_dataset("svhn")


def test_stl10_binary_is_column_major_with_labels_1_to_10():
    rng = np.random.default_rng(0)
    images = {s: rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8) for s, n in (("train", 20), ("test", 10))}
    files = {}
    for split, arr in images.items():
        files[f"stl10_binary/{split}_X.bin"] = arr.transpose(0, 1, 3, 2).tobytes()  # column-major per channel
        files[f"stl10_binary/{split}_y.bin"] = (np.arange(len(arr)) % 10 + 1).astype(np.uint8).tobytes()
    files["stl10_binary/class_names.txt"] = "\n".join(
        ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]).encode()
    tar_gz(dataset_cache_dir("stl-10") / "stl10_binary.tar.gz", files)
    data = load_dataset("stl10", val_fraction=0.5)
    assert torch.equal(data.test.images, torch.from_numpy(images["test"]))
    assert data.test.labels.tolist() == list(range(10))
    x_path = dataset_cache_dir("stl-10") / "stl10_binary" / "test_X.bin"
    x_path.write_bytes(x_path.read_bytes()[:-5])
    with pytest.raises(DatasetError, match=r"test_X.bin is truncated.*expected 276,480"):
        load_dataset("stl10")


def test_real_fashion_mnist_from_the_system_copy(fashion_available):
    data = load_dataset("fashion_mnist", val_fraction=0.1)
    assert len(data.test) == 10000 and data.test.labels.bincount().tolist() == [1000] * 10
    assert data.val.labels.bincount().tolist() == [600] * 10  # stratified: 10% of 6,000 per class
    assert data.input_shape == (1, 28, 28) and data.class_names[9] == "Ankle boot"
