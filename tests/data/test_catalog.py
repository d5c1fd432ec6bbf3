"""The catalog: every dataset of the guide, its facts, its availability here, and the CLI views."""

from __future__ import annotations

import dataclasses
import json

import pytest
from PIL import Image

from cnnkit.cli import main
from cnnkit.data import get_info, list_datasets, load_dataset, resolve_name
from cnnkit.data.catalog_view import availability, info, table
from cnnkit.data.dataset import READERS, _load_readers
from cnnkit.data.sources import dataset_cache_dir
from cnnkit.errors import DatasetError

GUIDE = ["mnist", "fashion-mnist", "kmnist", "emnist-balanced", "sign-language-mnist", "cifar-10", "cifar-100",
         "svhn", "gtsrb", "fer-2013", "stl-10", "dogs-vs-cats", "flowers", "intel-image", "asl-alphabet",
         "imagenet", "coco", "open-images", "places365", "kinetics-700", "cityscapes", "ade20k", "pascal-voc",
         "lsun", "youtube-8m"]


def test_all_25_datasets_of_the_guide_plus_digits_are_catalogued():
    main_records = [i.name for i in list_datasets() if not i.parent and i.level != "builtin"]
    assert sorted(main_records) == sorted(GUIDE) and len(main_records) == 25
    levels = {i.name: i.level for i in list_datasets()}
    assert levels["digits"] == "builtin" and levels["mnist"] == "beginner"
    assert levels["cifar-10"] == "intermediate" and levels["imagenet"] == "advanced"


@pytest.mark.parametrize("record", list_datasets(), ids=lambda i: i.name)
def test_every_record_is_complete_and_consistent(record):
    _load_readers()
    assert record.title and record.homepage.startswith("http") and record.license
    assert record.task in ("classification", "detection", "segmentation", "video")
    if record.class_names:
        assert len(record.class_names) == record.num_classes and len(set(record.class_names)) == record.num_classes
    if record.trainable:
        assert record.reader in READERS and record.input_shape
        assert len(record.mean) in (0, 1, 3) and len(record.mean) == len(record.std)
        assert record.obtain in ("builtin", "download", "manual")
        if record.obtain == "manual":
            assert record.manual_steps and record.extra.get("expect")
    for f in record.files:
        assert f.urls and all(u.startswith("http") for u in f.urls)
        assert f.md5 or f.sha256 or record.name == "kuzushiji-49"


def test_published_accuracies_and_class_order_follow_the_reference():
    assert get_info("sign-language-mnist").class_names == tuple("ABCDEFGHIKLMNOPQRSTUVWXY")
    assert get_info("fer-2013").class_names[4:] == ("Sad", "Surprise", "Neutral")
    assert get_info("stl-10").class_names[0] == "airplane" and get_info("gtsrb").num_classes == 43
    assert get_info("cifar-100").class_names[:3] == ("apple", "aquarium_fish", "baby")
    assert ("SOTA", "99.50% ViT-H/14 (JFT-300M pre-training)") in get_info("cifar-10").accuracy
    assert get_info("svhn").files[0].md5 == "e26dedcc434d2e4c54c9b2d4a06d8373"


@pytest.mark.parametrize("alias,name", [("cifar10", "cifar-10"), ("fashion_mnist", "fashion-mnist"),
                                        ("SVHN", "svhn"), ("CIFAR-100", "cifar-100"), ("emnist", "emnist-balanced"),
                                        ("ILSVRC2012", "imagenet"), ("fer2013", "fer-2013"), ("stl10", "stl-10")])
def test_aliases(alias, name):
    assert resolve_name(alias) == name


def test_unknown_name_suggests_close_ones():
    with pytest.raises(DatasetError, match="Did you mean cifar-10"):
        resolve_name("cifar-11")


def test_availability_states(tmp_path):
    assert availability(get_info("digits")) == "built in"
    assert availability(get_info("coco")) == "not a classification task yet"
    assert availability(get_info("cifar-10")) == "downloadable"
    assert availability(get_info("flowers")) == "manual download"
    (dataset_cache_dir("flowers") / "flowers").mkdir(parents=True)
    assert availability(get_info("flowers")) == "cached"
    cifar = dataset_cache_dir("cifar-10")
    cifar.mkdir(parents=True)
    (cifar / "cifar-10-python.tar.gz").write_bytes(b"x")
    assert availability(get_info("cifar-10")) == "cached"
    system = tmp_path / "usr-share"
    system.mkdir()
    for f in get_info("fashion-mnist").files:
        (system / f.name).write_bytes(b"x")
    record = dataclasses.replace(get_info("fashion-mnist"), system_paths=(str(system),))
    assert availability(record) == "system copy"


def test_table_and_info_texts():
    text = table()
    for level in ("builtin:", "beginner:", "intermediate:", "advanced:"):
        assert level in text
    assert all(name in text for name in GUIDE)
    card = info("cifar10")
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in card
    assert "sha256 6d958be0" in card and "ResNet-110 93.57%" in card and "airplane, automobile" in card
    assert "not supported yet" in info("cityscapes") and "Kaggle" in info("flowers")


def test_detection_datasets_say_training_is_not_supported(capsys):
    with pytest.raises(DatasetError, match="detection dataset; cnnkit trains image classifiers only"):
        load_dataset("coco")
    assert main(["train", "--data", "youtube-8m"]) == 2
    assert "video dataset" in capsys.readouterr().err


def test_cli_offline_cifar10_prints_url_checksum_and_folder(capsys, tmp_path):
    assert main(["train", "--data", "cifar-10", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in err
    assert "c58f30108f718f92721af3b95e74349a" in err and f"{dataset_cache_dir('cifar-10')}/" in err
    assert "Traceback" not in err


def test_cli_datasets_list_info_and_show(capsys, tmp_path):
    assert main(["datasets"]) == 0
    assert "fashion-mnist" in capsys.readouterr().out
    assert main(["datasets", "info", "svhn"]) == 0
    assert "10 meaning digit 0" in capsys.readouterr().out
    assert main(["datasets", "show", "digits", "--out", str(tmp_path)]) == 0
    png = capsys.readouterr().out.strip()
    assert png.endswith("digits-samples.png") and Image.open(png).size[0] > 100
    assert main(["datasets", "info", "nope-set"]) == 2


def test_cli_datasets_level_filter_and_json(capsys):
    assert main(["datasets", "--level", "advanced"]) == 0
    out = capsys.readouterr().out
    assert "imagenet" in out and "mnist" not in out
    assert main(["datasets", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == len(list_datasets()) and {"availability", "cache_folder", "files"} <= set(rows[0])
    assert main(["datasets", "info", "cifar-10", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"][0]["md5"] == "c58f30108f718f92721af3b95e74349a"


def test_cli_datasets_show_out_png_is_the_file(capsys, tmp_path):
    """--out x.png names the picture itself; any other --out is a folder for NAME-samples.png."""
    target = tmp_path / "pics" / "grid.png"
    assert main(["datasets", "show", "digits", "--out", str(target), "--per-class", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert target.is_file() and Image.open(target).format == "PNG"
    folder = tmp_path / "as-folder"
    assert main(["datasets", "show", "digits", "--out", str(folder), "--per-class", "2"]) == 0
    assert capsys.readouterr().out.strip() == str(folder / "digits-samples.png")


def test_registering_a_dataset_name_or_alias_twice_is_an_error(monkeypatch):
    from cnnkit.data import catalog

    monkeypatch.setattr(catalog, "_REGISTRY", dict(catalog._REGISTRY))
    fashion = get_info("fashion-mnist")
    with pytest.raises(DatasetError, match="'fashion-mnist' is already registered") as caught:
        catalog.register(dataclasses.replace(fashion, aliases=()))
    assert "cnnkit.data.catalog_level1" in str(caught.value) and __name__ in str(caught.value)
    # An alias that is another record's name (or alias, in any spelling resolve_name accepts) clashes too.
    with pytest.raises(DatasetError, match="alias 'Fashion_MNIST'.*fashion-mnist"):
        catalog.register(dataclasses.replace(fashion, name="my-fashion", aliases=("Fashion_MNIST",)))
    with pytest.raises(DatasetError, match="cifar10"):
        catalog.register(dataclasses.replace(fashion, name="cifar10", aliases=()))
    catalog.register(dataclasses.replace(fashion, name="my-fashion", aliases=("my-fmnist",)))
    assert resolve_name("my_fmnist") == "my-fashion"
