"""Shared fixtures: every test runs offline, with its own cache folder."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

FASHION_SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

# Set before collection too: huggingface_hub reads HF_HUB_OFFLINE once, when it is first imported,
# and a test module that imports timm at module level imports it before any fixture runs.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["CNNKIT_OFFLINE"] = "1"
# Keras reads KERAS_HOME once, at import (and writes keras.json there): never the user's ~/.keras.
os.environ["KERAS_HOME"] = tempfile.mkdtemp(prefix="cnnkit-test-keras-")


@pytest.fixture(autouse=True)
def offline_cache(tmp_path_factory, monkeypatch):
    """Nothing downloads in tests, and nothing touches the user's cache."""
    home = tmp_path_factory.mktemp("cnnkit_home")
    monkeypatch.setenv("CNNKIT_HOME", str(home))
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(home / "torch"))
    monkeypatch.setenv("HF_HOME", str(home / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.manual_seed(0)
    return home


@pytest.fixture(scope="session")
def fashion_available():
    """The Debian copy of Fashion-MNIST; with CI set, missing data is a failure, not a skip."""
    if not (FASHION_SYSTEM_DIR / "train-images-idx3-ubyte.gz").exists():
        if os.environ.get("CI"):
            pytest.fail("Fashion-MNIST is missing: CI must `apt-get install dataset-fashion-mnist`")
        pytest.skip("Fashion-MNIST system copy not installed (apt-get install dataset-fashion-mnist)")
    return FASHION_SYSTEM_DIR
