"""The model registry: names and source prefixes are registered once."""

from __future__ import annotations

import pytest

from cnnkit.errors import CnnkitError
from cnnkit.models import registry
from cnnkit.models.registry import register_model, register_source
from conftest import need_package


def test_registering_a_model_name_twice_is_an_error(monkeypatch):
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))

    def other_builder(*, input_shape, num_classes):  # pragma: no cover - never built
        raise AssertionError

    with pytest.raises(CnnkitError, match="resnet-small.*already registered") as caught:
        register_model("resnet-small", "a second one")(other_builder)
    message = str(caught.value)
    assert "cnnkit.models.builtins" in message and "other_builder" in message  # both places
    assert registry._MODELS["resnet-small"].builder is not other_builder


def test_registering_a_source_prefix_twice_is_an_error(monkeypatch):
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))
    with pytest.raises(CnnkitError, match="'tv'.*already registered") as caught:
        register_source("tv", lambda name, **kw: None, lambda pattern: [])
    assert "cnnkit.models.pretrained" in str(caught.value) and __name__ in str(caught.value)
    register_source("my-zoo", lambda name, **kw: None, lambda pattern: [])  # a new prefix is fine
    assert "my-zoo" in registry._SOURCES


def test_models_timm_no_match_blames_the_extra_only_when_timm_is_missing(capsys, monkeypatch):
    import sys

    from cnnkit.cli import main

    need_package("timm", "pip install 'cnnkit[timm]'")
    assert main(["models", "--source", "timm", "yolo*"]) == 2
    err = capsys.readouterr().err
    assert "no model matches 'yolo*' in source 'timm'" in err and "extra" not in err
    monkeypatch.setitem(sys.modules, "timm", None)  # as if timm were not installed
    assert main(["models", "--source", "timm", "yolo*"]) == 2
    assert "pip install 'cnnkit[timm]'" in capsys.readouterr().err


def test_models_unknown_source_names_the_valid_ones(capsys):
    from cnnkit.cli import main

    assert main(["models", "--source", "kerascv"]) == 2
    err = capsys.readouterr().err
    assert "unknown model source 'kerascv'" in err and "no model matches" not in err
    for source in ("builtin", *registry._SOURCES):
        assert source in err
    assert "did you mean 'keras'" in err.lower()


def test_unknown_prefix_lists_every_registered_source(capsys):
    from cnnkit.cli import main

    assert main(["summary", "foo:bar", "--input", "3x32x32"]) == 2
    err = capsys.readouterr().err
    assert "unknown model source 'foo'" in err
    for prefix in registry._SOURCES:
        assert f"{prefix}:" in err
    with pytest.raises(CnnkitError, match="hf:.*keras:"):
        registry.create_model("kerascv:ResNet50", input_shape=(3, 32, 32), num_classes=10)
