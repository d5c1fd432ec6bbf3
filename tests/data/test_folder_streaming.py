"""User image folders (bad data, modes, layouts), the automatic path choice and the streaming loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from formats_writer import class_folder, image_bytes, write_image
from PIL import Image

from cnnkit.cli import main
from cnnkit.data import load_dataset
from cnnkit.data.arrays import FileList, stratified_split
from cnnkit.data.augment import get_augment
from cnnkit.data.decode import decode_file
from cnnkit.data.loader import TensorLoader, make_loader
from cnnkit.data.streaming import StreamingLoader
from cnnkit.errors import DatasetError


@pytest.fixture
def messy_folder(tmp_path):
    """Two classes of 24x24 RGB JPEGs plus a corrupt JPEG, a .txt, a hidden file and an empty class."""
    root = tmp_path / "pets"
    class_folder(root, ["cat", "dog"], per_class=12, size=(24, 24))
    (root / "cat" / "broken.jpg").write_bytes(image_bytes(size=(24, 24))[:200])  # truncated JPEG
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / ".hidden.jpg").write_bytes(image_bytes(size=(24, 24)))
    (root / ".DS_Store").write_bytes(b"\0")
    (root / "empty_class").mkdir()
    return root


def test_folder_skips_and_counts_bad_files_and_reports_the_empty_class(messy_folder):
    with pytest.warns(UserWarning) as caught:
        data = load_dataset(str(messy_folder), val_fraction=0.2)
    messages = " ".join(str(w.message) for w in caught)
    assert "empty_class hold no images" in messages and "skipped 1 unreadable image" in messages
    assert data.class_names == ["cat", "dog"] and data.input_shape == (3, 24, 24)
    assert len(data.skipped) == 1 and data.skipped[0].endswith("broken.jpg")
    assert len(data.train) + len(data.val) + len(data.test) == 24  # 25 readable files listed, 1 skipped
    assert data.path == "tensor" and len(data.mean) == 3 and data.warnings


def test_strict_mode_turns_bad_files_into_errors(messy_folder):
    with pytest.raises(DatasetError, match="empty_class"):
        load_dataset(str(messy_folder), strict=True)
    (messy_folder / "empty_class").rmdir()
    with pytest.raises(DatasetError, match=r"unreadable image .*broken.jpg"):
        load_dataset(str(messy_folder), strict=True)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "P", "CMYK", "I;16"])
def test_every_image_mode_converts(tmp_path, mode):
    path = write_image(tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png"), mode=mode, size=(10, 6))
    assert Image.open(path).mode == mode
    for channels in (1, 3):
        out = decode_file(str(path), (8, 8), channels)
        assert out.shape == (channels, 8, 8) and out.dtype == np.uint8


def test_grayscale_folder_gets_one_channel_and_mixed_sizes_get_128(tmp_path):
    gray = class_folder(tmp_path / "g", ["a", "b"], per_class=5, size=(12, 12), mode="L", ext=".png")
    assert load_dataset(str(gray), val_fraction=0.25).input_shape == (1, 12, 12)
    mixed = tmp_path / "m"
    for i in range(5):
        write_image(mixed / "a" / f"{i}.jpg", size=(30 + i, 20))
        write_image(mixed / "b" / f"{i}.jpg", size=(20, 30 + i))
    assert load_dataset(str(mixed), val_fraction=0.25).input_shape == (3, 128, 128)


def test_train_and_test_subfolders_are_the_official_splits(tmp_path):
    class_folder(tmp_path / "d" / "train", ["x", "y", "z"], per_class=6, size=(16, 16))
    class_folder(tmp_path / "d" / "test", ["x", "y", "z"], per_class=2, size=(16, 16))
    class_folder(tmp_path / "d" / "val", ["x", "y", "z"], per_class=1, size=(16, 16))
    data = load_dataset(str(tmp_path / "d"))
    assert (len(data.train), len(data.val), len(data.test)) == (18, 3, 6)


def test_stratified_split_limit_and_fraction_are_fixed_by_the_seed(tmp_path):
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    keep, held = stratified_split(labels, 0.1, seed=3)
    assert np.bincount(labels[held]).tolist() == [1, 2, 3, 4] and len(keep) == 90
    assert np.array_equal(held, stratified_split(labels, 0.1, seed=3)[1])
    assert not np.array_equal(held, stratified_split(labels, 0.1, seed=4)[1])
    root = class_folder(tmp_path / "f", ["a", "b"], per_class=20, size=(8, 8))
    limited = load_dataset(str(root), val_fraction=0.25, limit=10)
    assert len(limited.train) == 10 and limited.train.labels.bincount().tolist() == [5, 5]
    half = load_dataset(str(root), val_fraction=0.25, fraction=0.5)
    assert len(half.train) == 12


def _files(tmp_path, n=20, bad=()):
    paths, labels = [], []
    for i in range(n):
        p = tmp_path / f"{i}.png"
        if i in bad:
            p.write_bytes(b"\x89PNG\r\n\x1a\n broken")
        else:
            write_image(p, size=(12, 10), seed=i)
        paths.append(str(p))
        labels.append(i % 3)
    return FileList(paths, np.asarray(labels), (8, 8), 3)


def test_streaming_loader_yields_exactly_what_the_tensor_loader_would(tmp_path):
    files = _files(tmp_path)
    from cnnkit.data.decode import decode_all

    arrays, _ = decode_all(files)
    kw = dict(batch_size=6, mean=(0.5,), std=(0.25,), shuffle=True, augment=get_augment("crop-flip"), seed=7)
    tensor, stream = TensorLoader(arrays, **kw), StreamingLoader(files, num_workers=0, **kw)
    for loader in (tensor, stream):
        loader.set_epoch(2)
    assert len(tensor) == len(stream) == 4 and stream.num_samples == 20
    for (xa, ya), (xb, yb) in zip(tensor.iterate(1), stream.iterate(1), strict=True):
        assert torch.equal(ya, yb) and torch.allclose(xa, xb)
    assert isinstance(make_loader(files, batch_size=4, mean=(0.5,), std=(0.5,)), StreamingLoader)
    assert isinstance(make_loader(arrays, batch_size=4, mean=(0.5,), std=(0.5,), num_workers=2), TensorLoader)


def test_streaming_with_workers_and_decoded_cache_skips_bad_files(tmp_path):
    files = _files(tmp_path / "imgs", n=24, bad=(5,)) if (tmp_path / "imgs").mkdir() is None else None
    files.skipped = []
    loader = StreamingLoader(files, batch_size=8, mean=(0.5,), std=(0.5,), num_workers=2,
                             cache_dir=tmp_path / "cache")
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        first = [y for _, y in loader]
    assert sum(len(y) for y in first) == 23 and files.skipped == [files.paths[5]]
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2
    for p in files.paths:  # the second epoch reads the cache, not the files
        if not p.endswith("/5.png"):
            Image.new("RGB", (12, 10)).save(p)
    second = torch.cat([x for x, _ in loader])
    assert second.abs().sum() > 0 and files.skipped == [files.paths[5]]
    files.strict = True
    with pytest.raises(DatasetError, match="5.png"):
        list(StreamingLoader(files, batch_size=8, mean=(0.5,), std=(0.5,), num_workers=0))


def test_large_folders_stream_and_report_skips_into_the_splits(tmp_path, monkeypatch):
    root = class_folder(tmp_path / "big", ["a", "b"], per_class=10, size=(16, 16))
    (root / "a" / "zz.jpg").write_bytes(b"\xff\xd8 truncated")
    monkeypatch.setattr("cnnkit.data.dataset.TENSOR_PATH_BYTES", 100)
    data = load_dataset(str(root), val_fraction=0.2)
    assert data.path == "streaming" and isinstance(data.train, FileList)
    loaders = [make_loader(s, batch_size=4, mean=data.mean, std=data.std, num_workers=0)
               for s in (data.train, data.val, data.test)]
    with pytest.warns(UserWarning):
        seen = sum(len(y) for loader in loaders for _, y in loader)
    assert seen == 20 and len(data.skipped) == 1
    with pytest.warns(UserWarning, match="zz.jpg"):
        assert load_dataset(str(root), stream=False, val_fraction=0.2).path == "tensor"


def test_cli_trains_on_a_user_folder_with_a_corrupt_jpeg_and_a_txt(messy_folder, tmp_path):
    (messy_folder / "empty_class").rmdir()
    with pytest.warns(UserWarning, match="broken.jpg"):
        assert main(["train", "--data", str(messy_folder), "--epochs", "1", "--batch-size", "8",
                     "--model", "conv4-3,relu,maxpool2,flatten,dense2", "--out", str(tmp_path / "runs")]) == 0
    run = tmp_path / "runs" / "latest"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["skipped_files"] == 1 and summary["dataset"] == "pets"
    assert "1 unreadable file(s) were skipped" in (run / "report.md").read_text()


def test_cli_strict_stops_at_the_corrupt_jpeg(messy_folder, tmp_path, capsys):
    (messy_folder / "empty_class").rmdir()
    assert main(["train", "--data", str(messy_folder), "--epochs", "1", "--strict",
                 "--out", str(tmp_path / "runs")]) == 2
    assert "broken.jpg" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_trainer_runs_on_the_streaming_path_through_make_loader(tmp_path, monkeypatch):
    """The Trainer builds its loaders with make_loader, so a streaming split trains unchanged."""
    root = class_folder(tmp_path / "many", ["a", "b"], per_class=12, size=(16, 16))
    (root / "b" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    monkeypatch.setattr("cnnkit.data.dataset.TENSOR_PATH_BYTES", 1000)  # force streaming
    monkeypatch.setattr("cnnkit.data.streaming.default_workers", lambda: 0)
    from cnnkit.models import create_model
    from cnnkit.train.run import make_trainer, start_run

    config, data, run_dir, device = start_run(None, data=str(root), epochs=1, batch_size=8,
                                              model="conv4-3,relu,maxpool2,flatten,dense2",
                                              out=str(tmp_path / "runs"), log=lambda *_: None)
    assert data.path == "streaming"
    model = create_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes)
    trainer = make_trainer(model, data, config, device, run_dir, live=False, log=lambda *_: None)
    with pytest.warns(UserWarning, match="skipped 1 unreadable"):
        trainer.fit()
        loss, accuracy = trainer.evaluate(trainer.eval_loader(data.test))
    assert 0.0 <= accuracy <= 1.0 and len(data.skipped) == 1 and data.skipped[0].endswith("bad.png")
    assert (run_dir / "last" / "checkpoint.pt").is_file()


def test_show_writes_a_grid_for_a_streamed_folder(tmp_path, monkeypatch, capsys):
    root = class_folder(tmp_path / "photos", ["ant", "bee", "cow"], per_class=4, size=(20, 20))
    monkeypatch.setattr("cnnkit.data.dataset.TENSOR_PATH_BYTES", 100)
    assert main(["datasets", "show", str(root), "--out", str(tmp_path), "--per-class", "2"]) == 0
    png = capsys.readouterr().out.strip()
    assert png.endswith("photos-samples.png") and Image.open(png).size[1] > 50


def test_a_damaged_decode_cache_is_decoded_again(tmp_path):
    from cnnkit.data.decode import decode_all

    files = _files(tmp_path / "images")
    first, skipped_first = decode_all(files, cache_dir=tmp_path / "cache")
    (cached,) = (tmp_path / "cache").glob("*.npz")
    cached.write_bytes(cached.read_bytes()[:100])  # a disk that lost the end of the file
    again, skipped = decode_all(files, cache_dir=tmp_path / "cache")
    assert torch.equal(first.images, again.images) and skipped == skipped_first
