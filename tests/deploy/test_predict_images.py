"""Prediction over many files: every readable image is predicted, each unreadable one is reported."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

import cnnkit
from cnnkit.cli import main
from cnnkit.errors import ImageError
from cnnkit.models import BundleMeta, create_model, save_bundle
from cnnkit.tasks.base import get_task


@pytest.fixture
def bundle_and_files(tmp_path):
    model = create_model("simple-cnn", input_shape=(1, 28, 28), num_classes=4).eval()
    bundle = save_bundle(model, tmp_path / "bundle",
                         BundleMeta(model.cnnkit_arch, [1, 28, 28], ["a", "b", "c", "d"], [0.5], [0.25]))
    rng = np.random.default_rng(0)
    good = []
    for name in ("one.png", "two.jpg"):
        good.append(tmp_path / name)
        Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(good[-1])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    missing = tmp_path / "missing.png"
    return bundle, [good[0], broken, missing, good[1]]


def test_classification_decodes_logits_to_top_k_records():
    logits = torch.tensor([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]]).log()  # softmax gives these probabilities back
    decode = get_task("classification").decode
    records = decode(logits, ["x", "y", "z"], 2)
    assert [[t["class"] for t in r] for r in records] == [["y", "z"], ["x", "z"]]
    assert records[0][0] == {"class": "y", "index": 1, "probability": 0.6}
    assert len(decode(logits, ["x", "y", "z"], 10)[0]) == 3


def test_api_predicts_every_readable_image_and_marks_the_others(bundle_and_files):
    bundle, files = bundle_and_files
    records = cnnkit.predict(bundle, files, top_k=2)
    assert [r["image"] for r in records] == [str(f) for f in files]
    assert [("top" in r, "error" in r) for r in records] == [(True, False), (False, True), (False, True),
                                                            (True, False)]
    assert "broken.jpg" in records[1]["error"] and "not a readable image" in records[1]["error"]
    assert "missing.png" in records[2]["error"] and "no such file" in records[2]["error"]
    # the readable ones get the same answer as when predicted alone
    assert records[3]["top"] == cnnkit.predict(bundle, [files[3]], top_k=2)[0]["top"]
    with pytest.raises(ImageError, match="broken.jpg"):
        cnnkit.predict(bundle, files, strict=True)


def test_cli_predicts_readable_images_reports_each_unreadable_one_and_exits_2(bundle_and_files, capsys):
    bundle, files = bundle_and_files
    assert main(["predict", str(bundle), *map(str, files)]) == 2
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == [str(files[0]), str(files[3])]
    err = captured.err.strip().splitlines()
    assert any("broken.jpg" in line and "not a readable image" in line for line in err)
    assert any("missing.png" in line and "no such file" in line for line in err)
    assert "Traceback" not in captured.err


def test_cli_predict_json_marks_failures(bundle_and_files, capsys):
    bundle, files = bundle_and_files
    assert main(["predict", str(bundle), *map(str, files), "--json"]) == 2
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [r["image"] for r in rows] == [str(f) for f in files]
    assert ["error" in r for r in rows] == [False, True, True, False]
    assert len(rows[0]["top"]) == 3


def test_cli_predict_strict_stops_at_the_first_unreadable_image(bundle_and_files, capsys):
    bundle, files = bundle_and_files
    assert main(["predict", str(bundle), *map(str, files), "--strict"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "broken.jpg" in captured.err and "missing.png" not in captured.err
    assert main(["predict", str(bundle), str(files[0]), str(files[3])]) == 0  # all readable: exit 0
