"""Catalog record of the built-in dataset: scikit-learn's 8x8 digits (offline, seconds to train)."""

from __future__ import annotations

from .catalog import DatasetInfo, register

register(
    DatasetInfo(
        name="digits",
        title="scikit-learn digits (UCI optical digits, 8x8)",
        level="builtin",
        task="classification",
        shape=(1, 8, 8),
        num_classes=10,
        class_names=tuple(str(i) for i in range(10)),
        train_size=1797,
        homepage="https://archive.ics.uci.edu/dataset/80",
        license="CC BY 4.0 (UCI); the file ships in scikit-learn (BSD-3-Clause)",
        obtain="builtin",
        reader="digits",
        mean=(0.3051,),
        std=(0.3770,),
        format="digits.csv.gz inside the scikit-learn wheel (values 0-16, scaled to 0-255)",
        notes="1,797 images, no official split (cnnkit makes a stratified 80/20 train/test "
        "split with a fixed seed, then holds out validation from train).",
    )
)
