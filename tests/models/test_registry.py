"""The model registry: names and source prefixes are registered once."""

from __future__ import annotations

import pytest

from cnnkit.errors import CnnkitError
from cnnkit.models import registry
from cnnkit.models.registry import register_model, register_source


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
