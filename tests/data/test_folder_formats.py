"""`--data ./folder` holding a catalogued dataset's own files is read with that dataset's reader."""

from __future__ import annotations

import numpy as np
import pytest
from formats_writer import write_mnist_family

from cnnkit.cli import main
from cnnkit.data import load_dataset
from cnnkit.data.sources import dataset_cache_dir
from conftest import FASHION_SYSTEM_DIR, unavailable


def _sign_csv(path, labels, seed=0):
    rng = np.random.default_rng(seed)
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    rows = [f"{lab}," + ",".join(map(str, rng.integers(0, 256, 784))) for lab in labels]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


def _fer_csv(path):
    rng = np.random.default_rng(0)
    rows = [(i % 7, " ".join(map(str, rng.integers(0, 256, 2304))), usage)
            for usage, n in (("Training", 14), ("PublicTest", 7), ("PrivateTest", 7)) for i in range(n)]
    path.write_text("emotion,pixels,Usage\n" + "".join(f'{e},"{p}",{u}\n' for e, p, u in rows))


def test_folder_with_sign_language_mnist_csvs(tmp_path):
    folder = tmp_path / "my-signs"
    folder.mkdir()
    labels = [i for i in range(25) if i != 9]
    _sign_csv(folder / "sign_mnist_train.csv", labels * 2)
    _sign_csv(folder / "sign_mnist_test.csv", labels, seed=1)
    data = load_dataset(str(folder), val_fraction=0.5)
    assert data.num_classes == 24 and data.class_names[9] == "K" and data.input_shape == (1, 28, 28)
    assert data.test.labels.tolist() == list(range(24))
    assert not dataset_cache_dir("sign-language-mnist").exists()  # read where it is, nothing copied


def test_folder_with_fer2013_csv(tmp_path):
    _fer_csv(tmp_path / "fer2013.csv")
    data = load_dataset(str(tmp_path))
    assert (len(data.train), len(data.val), len(data.test)) == (14, 7, 7)
    assert data.input_shape == (1, 48, 48) and data.class_names[6] == "Neutral"


@pytest.mark.parametrize("gz", [True, False])
def test_folder_with_idx_files_of_unknown_origin(tmp_path, gz):
    arrays = write_mnist_family(tmp_path, n_train=40, n_test=20)
    if not gz:  # decompressed by the user: train-images-idx3-ubyte
        import gzip

        for path in list(tmp_path.glob("*.gz")):
            path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))
            path.unlink()
    data = load_dataset(str(tmp_path), val_fraction=0.25)
    assert data.input_shape == (1, 28, 28) and len(data.test) == 20 and len(data.train) + len(data.val) == 40
    assert data.class_names == [str(i) for i in range(10)]  # not MNIST's nor Fashion-MNIST's names: unverified
    assert np.array_equal(data.test.labels.numpy(), arrays["t10k"][1].astype(np.int64))


def test_folder_with_a_copy_of_fashion_mnist_is_recognised_by_checksum(tmp_path):
    if not FASHION_SYSTEM_DIR.is_dir():
        unavailable("Fashion-MNIST", "apt-get install dataset-fashion-mnist")
    for path in FASHION_SYSTEM_DIR.glob("*.gz"):
        (tmp_path / path.name).symlink_to(path)
    data = load_dataset(str(tmp_path), limit=200)
    assert data.class_names[0] == "T-shirt/top" and len(data.test) == 10_000


def test_datasets_show_reads_the_folder(tmp_path, capsys):
    _fer_csv(tmp_path / "fer2013.csv")
    assert main(["datasets", "show", str(tmp_path), "--out", str(tmp_path / "grid.png"), "--per-class", "1"]) == 0
    assert (tmp_path / "grid.png").is_file()
