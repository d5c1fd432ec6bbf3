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


def unavailable(what: str, install: str) -> None:
    """A test's data or package is missing: a skip on a developer's machine, a failure under CI,
    where a missing install step must not pass unnoticed."""
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing: CI must `{install}`", pytrace=False)
    pytest.skip(f"{what} is not installed ({install})", allow_module_level=True)


@pytest.fixture(scope="session")
def fashion_available():
    """The Debian copy of Fashion-MNIST."""
    if not (FASHION_SYSTEM_DIR / "train-images-idx3-ubyte.gz").exists():
        unavailable("Fashion-MNIST's system copy", "apt-get install dataset-fashion-mnist")
    return FASHION_SYSTEM_DIR


def need_package(module: str, install: str):
    """The imported module, or `unavailable` (a failure under CI, a skip elsewhere)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        unavailable(f"the {module} package", install)
