"""Readers of image-file and CSV datasets, on tiny files in the real layouts."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from formats_writer import class_folder, image_bytes, write_image, zip_file
from PIL import Image

from cnnkit.data import load_dataset
from cnnkit.data.sources import dataset_cache_dir
from cnnkit.errors import DatasetError, DatasetNotFound


def test_gtsrb_zips_with_semicolon_csv_and_roi_crop():
    cache = dataset_cache_dir("gtsrb")
    train = {}
    for c in range(3):
        lines = ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
        for i in range(4):
            name = f"{i // 2:05d}_{i % 2:05d}.ppm"
            train[f"GTSRB/Training/{c:05d}/{name}"] = image_bytes(size=(30, 26), fmt="PPM", seed=c * 10 + i)
            lines.append(f"{name};30;26;3;2;26;23;{c}")
        train[f"GTSRB/Training/{c:05d}/GT-{c:05d}.csv"] = ("\n".join(lines) + "\n").encode()
    zip_file(cache / "GTSRB-Training_fixed.zip", train)
    test, gt = {}, ["Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"]
    sign = np.zeros((40, 40, 3), np.uint8)
    sign[..., 0] = 255  # a red margin around a blue sign: the ROI (inclusive corners) is the blue part
    sign[5:35, 5:35] = (0, 0, 255)
    buf = io.BytesIO()
    Image.fromarray(sign).save(buf, format="PPM")
    for i in range(6):
        test[f"GTSRB/Final_Test/Images/{i:05d}.ppm"] = buf.getvalue()
        gt.append(f"{i:05d}.ppm;40;40;5;5;34;34;{i % 3}")
    test["GTSRB/Final_Test/Images/GT-final_test.test.csv"] = b"Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2\n"
    zip_file(cache / "GTSRB_Final_Test_Images.zip", test)
    zip_file(cache / "GTSRB_Final_Test_GT.zip", {"GT-final_test.csv": ("\n".join(gt) + "\n").encode()})
    data = load_dataset("gtsrb", val_fraction=0.25)
    assert data.input_shape == (3, 32, 32) and data.num_classes == 43
    assert data.class_names[14] == "Stop"
    assert data.test.labels.tolist() == [0, 1, 2, 0, 1, 2] and len(data.train) + len(data.val) == 12
    assert int(data.test.images[:, 0].max()) == 0 and int(data.test.images[:, 2].min()) == 255  # cropped


def _sign_csv(path, labels, seed=0):
    rng = np.random.default_rng(seed)
    header = "label," + ",".join(f"pixel{i}" for i in range(1, 785))
    rows = [f"{lab}," + ",".join(map(str, rng.integers(0, 256, 784))) for lab in labels]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


def test_sign_language_mnist_csv_without_j_and_z():
    folder = dataset_cache_dir("sign-language-mnist")
    labels = [i for i in range(25) if i != 9]
    _sign_csv(folder / "sign_mnist_train.csv", labels * 2)
    _sign_csv(folder / "sign_mnist_test" / "sign_mnist_test.csv", labels, seed=1)  # the folder copy
    data = load_dataset("sign_mnist", val_fraction=0.5)
    assert data.num_classes == 24 and data.class_names[9] == "K"
    assert data.test.labels.tolist() == list(range(24))  # 10 (K) -> 9, 24 (Y) -> 23
    assert data.input_shape == (1, 28, 28) and len(data.mean) == 1  # computed statistics
    _sign_csv(folder / "sign_mnist_train.csv", [9, 1])
    with pytest.raises(DatasetError, match=r"labels \[9\] are not Sign Language MNIST labels"):
        load_dataset("sign_mnist")


def _fer_rows(n, usage, seed):
    rng = np.random.default_rng(seed)
    return [(i % 7, " ".join(map(str, rng.integers(0, 256, 2304))), usage) for i in range(n)]


def test_fer2013_csv_usage_column_gives_the_three_splits():
    rows = _fer_rows(28, "Training", 0) + _fer_rows(14, "PublicTest", 1) + _fer_rows(7, "PrivateTest", 2)
    path = dataset_cache_dir("fer-2013") / "fer2013.csv"
    path.parent.mkdir(parents=True)
    path.write_text("emotion,pixels,Usage\n" + "".join(f'{e},"{p}",{u}\n' for e, p, u in rows))
    data = load_dataset("fer2013")
    assert (len(data.train), len(data.val), len(data.test)) == (28, 14, 7)
    assert data.input_shape == (1, 48, 48) and data.class_names[6] == "Neutral"
    first = np.array(rows[0][1].split(), dtype=np.uint8).reshape(48, 48)
    assert torch.equal(data.train.images[0, 0], torch.from_numpy(first))


def test_fer2013_icml_file_has_leading_spaces_in_its_header():
    rows = _fer_rows(14, "Training", 0) + _fer_rows(7, "PublicTest", 1) + _fer_rows(7, "PrivateTest", 2)
    path = dataset_cache_dir("fer-2013") / "icml_face_data.csv"
    path.parent.mkdir(parents=True)
    path.write_text("emotion, Usage, pixels\n" + "".join(f"{e},{u},{p}\n" for e, p, u in rows))
    data = load_dataset("fer")
    assert (len(data.train), len(data.val), len(data.test)) == (14, 7, 7)


def test_fer2013_msambare_folders_follow_the_csv_label_order():
    root = dataset_cache_dir("fer-2013")
    names = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]  # alphabetical on disk
    for split in ("train", "test"):
        class_folder(root / split, names, per_class=4 if split == "train" else 2, size=(48, 48), mode="L")
    data = load_dataset("fer-2013", val_fraction=0.25)
    assert data.input_shape == (1, 48, 48)
    assert data.class_names == ["Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral"]
    # the neutral folder's images carry label 6, not 4
    assert sorted(set(data.test.labels.tolist())) == list(range(7))
    neutral = data.test.labels == 6
    assert int(neutral.sum()) == 2


def test_flowers_layout_has_no_split_so_20_percent_becomes_test():
    root = dataset_cache_dir("flowers") / "flowers"
    class_folder(root, ["daisy", "dandelion", "rose", "sunflower", "tulip"], per_class=10, size=(40, 30))
    data = load_dataset("flowers", val_fraction=0.125)
    assert data.input_shape == (3, 128, 128) and len(data.test) == 10 and len(data.train) == 35
    assert data.class_names == ["daisy", "dandelion", "rose", "sunflower", "tulip"]


def test_intel_doubled_folders_and_unlabelled_pred_folder():
    root = dataset_cache_dir("intel-image")
    classes = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
    class_folder(root / "seg_train" / "seg_train", classes, per_class=4, size=(30, 30))
    class_folder(root / "seg_test" / "seg_test", classes, per_class=2, size=(30, 30))
    write_image(root / "seg_pred" / "seg_pred" / "1.jpg", size=(30, 30))
    data = load_dataset("intel", val_fraction=0.25, image_size=24)
    assert data.input_shape == (3, 24, 24) and len(data.test) == 12 and len(data.train) == 18


def test_asl_alphabet_flat_test_folder_is_ignored():
    root = dataset_cache_dir("asl-alphabet")
    classes = list("ABCDEFGHIJKLMNOPQRSTUVWXYZ") + ["del", "nothing", "space"]
    class_folder(root / "asl_alphabet_train" / "asl_alphabet_train", classes, per_class=3, size=(20, 20))
    write_image(root / "asl_alphabet_test" / "asl_alphabet_test" / "A_test.jpg", size=(20, 20))
    data = load_dataset("asl-alphabet", val_fraction=0.3, image_size=16)
    assert data.num_classes == 29 and data.class_names[-1] == "space"
    assert len(data.test) == 9  # 10% of 87, stratified; not the 1 flat test image


def test_dogs_vs_cats_labels_come_from_file_names():
    root = dataset_cache_dir("dogs-vs-cats")
    for i in range(6):
        write_image(root / "train" / f"cat.{i}.jpg", size=(50, 40), seed=i)
        write_image(root / "train" / f"dog.{i}.jpg", size=(40, 50), seed=10 + i)
        write_image(root / "test1" / f"{i + 1}.jpg", size=(40, 40), seed=20 + i)
    data = load_dataset("cats-vs-dogs", val_fraction=0.2, image_size=32)
    assert data.class_names == ["cat", "dog"] and data.input_shape == (3, 32, 32)
    assert len(data.train) + len(data.val) + len(data.test) == 12
    assert len(data.test) == 3 and set(data.test.labels.tolist()) == {0, 1}


def test_dogs_vs_cats_microsoft_layout_skips_corrupt_files():
    root = dataset_cache_dir("dogs-vs-cats") / "PetImages"
    class_folder(root, ["Cat", "Dog"], per_class=5, size=(30, 30))
    (root / "Cat" / "666.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "Dog" / "Thumbs.db").write_bytes(b"windows junk")
    with pytest.warns(UserWarning, match="skipped 1 unreadable image"):
        data = load_dataset("dogs-vs-cats", val_fraction=0.25, image_size=16)
    assert data.class_names == ["cat", "dog"] and len(data.skipped) == 1
    assert data.skipped[0].endswith("666.jpg")


def test_imagenet_folder_uses_val_as_test_and_streams_when_large(monkeypatch):
    root = dataset_cache_dir("imagenet")
    wnids = ["n01440764", "n01443537", "n01484850"]
    class_folder(root / "train", wnids, per_class=4, size=(40, 30), ext=".JPEG")
    class_folder(root / "val", wnids, per_class=2, size=(30, 40), ext=".JPEG")
    data = load_dataset("imagenet", val_fraction=0.25, image_size=32)
    assert data.path == "tensor" and len(data.test) == 6 and data.class_names == wnids
    monkeypatch.setattr("cnnkit.data.dataset.TENSOR_PATH_BYTES", 1000)
    streamed = load_dataset("imagenet", val_fraction=0.25, image_size=32)
    assert streamed.path == "streaming" and streamed.input_shape == (3, 32, 32)
    assert streamed.mean == (0.485, 0.456, 0.406)


def test_places365_file_lists():
    cache = dataset_cache_dir("places365")
    cats = ["/a/airfield 0", "/b/bakery/shop 1", "/c/canyon 2"]
    (cache).mkdir(parents=True)
    (cache / "categories_places365.txt").write_text("\n".join(cats) + "\n")
    train_lines, val_lines = [], []
    for c, path in enumerate(["a/airfield", "b/bakery/shop", "c/canyon"]):
        for i in range(3):
            write_image(cache / "data_256" / path / f"{i:08d}.jpg", size=(32, 32), seed=c * 10 + i)
            train_lines.append(f"/{path}/{i:08d}.jpg {c}")
        name = f"Places365_val_{c + 1:08d}.jpg"
        write_image(cache / "val_256" / name, size=(32, 32), seed=50 + c)
        val_lines.append(f"{name} {c}")
    (cache / "places365_train_standard.txt").write_text("\n".join(train_lines) + "\n")
    (cache / "places365_val.txt").write_text("\n".join(val_lines) + "\n")
    data = load_dataset("places365", val_fraction=0.3, image_size=16)
    assert data.class_names == ["a/airfield", "b/bakery/shop", "c/canyon"]
    assert data.test.labels.tolist() == [0, 1, 2] and len(data.train) == 6


def test_manual_dataset_missing_says_where_to_put_it():
    with pytest.raises(DatasetNotFound) as e:
        load_dataset("flowers")
    text = str(e.value)
    assert "kaggle.com/datasets/alxmamaev/flowers-recognition" in text
    assert str(dataset_cache_dir("flowers")) in text and "flowers/daisy/" in text


def test_file_name_labels_in_test_leave_out_a_class_train_lacks(tmp_path):
    for i in range(4):
        for animal in ("cat", "dog"):
            write_image(tmp_path / "train" / f"{animal}.{i}.jpg", size=(20, 20), seed=i)
            write_image(tmp_path / "test" / f"{animal}.{i}.jpg", size=(20, 20), seed=i)
        write_image(tmp_path / "test" / f"fox.{i}.jpg", size=(20, 20), seed=i)  # not a training class
    data = load_dataset(str(tmp_path), val_fraction=0.25, image_size=16)
    assert data.class_names == ["cat", "dog"] and len(data.test) == 8
    assert set(data.test.labels.tolist()) == {0, 1}
