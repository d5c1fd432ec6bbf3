"""The spine end to end: train -> run directory -> load -> evaluate -> predict, and the CLI's errors."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

import cnnkit
from cnnkit.cli import main
from cnnkit.data import catalog
from cnnkit.data.dataset import load_dataset
from cnnkit.data.loader import TensorLoader
from cnnkit.models import BundleMeta, create_model, save_bundle

RUN_FILES = ["config.yaml", "metrics.csv", "summary.json", "report.md", "best/model.safetensors",
             "best/cnnkit.json", "last/model.safetensors", "last/cnnkit.json", "last/checkpoint.pt",
             "plots/curves.png", "plots/confusion_matrix.png"]


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    return cnnkit.train(data="digits", epochs=6, out=str(out), log=lambda *_: None)


def test_train_writes_the_run_directory(digits_run):
    run = digits_run.run_dir
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    assert (run.parent / "latest").resolve() == run.resolve()
    summary = json.loads((run / "summary.json").read_text())
    for key in ("test_accuracy", "best_val_accuracy", "epochs", "train_seconds", "images_per_second",
                "dataset", "model"):
        assert key in summary
    assert summary["epochs"] == 6 and summary["dataset"] == "digits"
    assert summary["test_accuracy"] > 0.85
    rows = (run / "metrics.csv").read_text().strip().splitlines()
    assert rows[0].startswith("epoch,lr,train_loss") and len(rows) == 7


def test_bundle_reload_gives_bit_identical_logits(digits_run):
    data = load_dataset("digits")
    model = cnnkit.load(digits_run.run_dir)
    fresh = cnnkit.load(digits_run.run_dir / "best")
    loader = TensorLoader(data.test, batch_size=128, mean=data.mean, std=data.std)
    with torch.no_grad():
        for x, _ in loader:
            assert torch.equal(model(x), fresh(x))
    # and the same weights as the model that was trained (best/ is what the trainer saved)
    meta = model.cnnkit_meta
    assert meta.class_names == [str(i) for i in range(10)] and meta.input_shape == [1, 8, 8]


def test_save_and_load_roundtrip_is_bit_identical(tmp_path):
    model = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=10).eval()
    meta = BundleMeta(model.cnnkit_arch, [1, 28, 28], [str(i) for i in range(10)], [0.5], [0.5])
    save_bundle(model, tmp_path / "b", meta)
    again = cnnkit.load(tmp_path / "b")
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


def test_evaluate_reports_per_class_scores(digits_run, tmp_path):
    result = cnnkit.evaluate(digits_run.run_dir, out=tmp_path)
    assert result["images"] == 360
    assert abs(result["accuracy"] - digits_run.summary["test_accuracy"]) < 1e-6
    assert len(result["per_class"]) == 10
    assert (tmp_path / "confusion_matrix.png").is_file()
    assert np.array(result["confusion_matrix"]).sum() == 360


@pytest.fixture
def fashion_like_bundle(tmp_path):
    model = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=10).eval()
    names = list(catalog.get_info("fashion-mnist").class_names)
    return save_bundle(model, tmp_path / "bundle", BundleMeta(model.cnnkit_arch, [1, 28, 28], names, [0.286], [0.353]))


def test_predict_converts_an_rgb_jpeg_to_a_grey_28x28_model(fashion_like_bundle, tmp_path, capsys):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.jpg"
    Image.fromarray(rng.integers(0, 255, (100, 100, 3), dtype=np.uint8)).save(path)
    results = cnnkit.predict(fashion_like_bundle, [path], top_k=3)
    assert len(results[0]["top"]) == 3
    probs = [t["probability"] for t in results[0]["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    assert main(["predict", str(fashion_like_bundle), str(path), "--json"]) == 0
    line = json.loads(capsys.readouterr().out.strip())
    assert line["top"][0]["class"] in catalog.get_info("fashion-mnist").class_names


def test_predict_on_a_text_file_named_png_is_a_clear_error(fashion_like_bundle, tmp_path, capsys):
    fake = tmp_path / "not-an-image.png"
    fake.write_text("hello, I am text")
    assert main(["predict", str(fashion_like_bundle), str(fake)]) == 2
    err = capsys.readouterr().err
    assert "not-an-image.png" in err and "Traceback" not in err


def test_missing_fashion_mnist_names_files_urls_and_folder(monkeypatch, offline_cache, capsys):
    info = catalog.get_info("fashion-mnist")
    monkeypatch.setitem(catalog._REGISTRY, "fashion-mnist", dataclasses.replace(info, system_paths=()))
    assert main(["train", "--data", "fashion_mnist", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    for f in info.files:
        assert f.name in err and f.urls[0] in err
    assert str(offline_cache / "datasets" / "fashion-mnist") in err


def test_unknown_dataset_and_model_suggest_names(capsys):
    assert main(["train", "--data", "fashon-mnist"]) == 2
    assert "fashion-mnist" in capsys.readouterr().err
    assert main(["train", "--model", "simple-cn"]) == 2
    assert "simple-cnn" in capsys.readouterr().err


def test_debug_shows_the_traceback():
    with pytest.raises(cnnkit.CnnkitError):
        main(["--debug", "train", "--data", "no-such-data"])


def test_fashion_mnist_loads_from_the_system_copy(fashion_available):
    data = load_dataset("fashion_mnist")
    assert len(data.train) + len(data.val) == 60000 and len(data.test) == 10000
    assert data.train.images.shape[1:] == (1, 28, 28) and data.train.images.dtype == torch.uint8
    assert torch.bincount(data.test.labels).tolist() == [1000] * 10


def test_cli_trains_fashion_mnist_subset(fashion_available, tmp_path):
    assert main(["train", "--data", "fashion-mnist", "--epochs", "1", "--limit", "3000",
                 "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "latest" / "summary.json").read_text())
    assert summary["train_images"] == 3000 and summary["test_accuracy"] > 0.6


def test_a_model_that_cannot_be_built_leaves_no_run_directory(tmp_path, capsys):
    assert main(["train", "--model", "conv8-3,relu,dense5", "--out", str(tmp_path)]) == 2
    assert "dense10" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_evaluate_on_a_dataset_with_other_classes_is_a_clear_error(fashion_like_bundle, capsys):
    assert main(["evaluate", str(fashion_like_bundle), "--data", "digits"]) == 2
    err = capsys.readouterr().err
    assert "classes" in err and "Traceback" not in err


def test_the_cli_starts_without_torch_and_verbs_keep_their_names():
    import subprocess
    import sys

    code = ("import sys, cnnkit.cli; assert 'torch' not in sys.modules, 'cnnkit --help would wait for torch'\n"
            "import cnnkit.train.config, cnnkit.transfer.finetune, cnnkit.explain.report, cnnkit\n"
            "assert all(f.__module__ == 'cnnkit.api' for f in (cnnkit.datasets, cnnkit.summary, cnnkit.list_models))\n"
            "assert callable(cnnkit.train) and callable(cnnkit.finetune) and callable(cnnkit.explain)\n"
            "assert cnnkit.train.__module__ == 'cnnkit.api' and cnnkit.finetune.__module__ == 'cnnkit.transfer.finetune'")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_every_verb_is_a_public_function_named_in_the_api_table():
    import cnnkit.api
    from cnnkit.cli import COMMANDS

    assert set(cnnkit.api.VERBS) == set(COMMANDS)
    for verb, function in cnnkit.api.VERBS.items():
        assert callable(getattr(cnnkit, function)), function
        assert f"`cnnkit.{function}`" in cnnkit.api.__doc__ and f"`cnnkit {verb}`" in cnnkit.api.__doc__
    assert cnnkit.api.VERBS["lr-find"] == "lr_find"


def test_datasets_summary_and_models_are_python_functions():
    rows = cnnkit.datasets()
    assert {"name", "level", "availability", "cache_folder"} <= set(rows[0])
    assert {r["name"] for r in cnnkit.datasets("advanced")} <= {r["name"] for r in rows}
    assert all(r["level"] == "beginner" for r in cnnkit.datasets(level="beginner"))
    assert cnnkit.datasets_info("fashion_mnist")["name"] == "fashion-mnist"
    summary = cnnkit.summary("conv8-3,relu,flatten,dense10", input="1x8x8")
    assert summary.total_params == 8 * 9 + 8 + 8 * 36 * 10 + 10 and "dense" in summary.format()
    assert ("resnet-small", "builtin") in [(r[0], r[1]) for r in cnnkit.list_models("resnet*", source="builtin")]


def test_datasets_summary_and_models_verbs_are_shells_over_the_functions(monkeypatch, capsys, tmp_path):
    import cnnkit.api

    seen = {}

    def fake(name, value):
        def call(*args, **kwargs):
            seen[name] = (args, kwargs)
            return value
        monkeypatch.setattr(cnnkit.api, name, call)

    fake("datasets", [{"name": "only-this"}])
    assert main(["datasets", "--json", "--level", "advanced"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"name": "only-this"}] and seen["datasets"][0] == ("advanced",)
    fake("list_models", [("a-model", "builtin", "from the fake")])
    assert main(["models", "a*", "--pretrained"]) == 0
    assert "from the fake" in capsys.readouterr().out
    assert seen["list_models"] == (("a*",), {"source": None, "pretrained": True})
    real = cnnkit.summary("conv4-3,relu", input="1x6x6")
    fake("summary", real)
    assert main(["summary", "anything", "--input", "1x6x6", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["total_params"] == real.total_params
    assert seen["summary"][0] == ("anything",) and seen["summary"][1]["input"] == "1x6x6"
    png = tmp_path / "grid.png"
    fake("datasets_show", str(png))
    assert main(["datasets", "show", "digits", "--out", str(png)]) == 0
    assert capsys.readouterr().out.strip() == str(png) and seen["datasets_show"][0] == ("digits", str(png))
