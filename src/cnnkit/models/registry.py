"""One model registry: a name (or a layer spec) -> a model for given channels and classes.

Built-in architectures register with `@register_model`; other sources (torchvision,
timm, saved bundles) plug in through `register_source` with a name prefix
(`tv:resnet18`, `timm:resnet18.a1_in1k`). Every model carries `cnnkit_arch`, an
`ArchRecord` (models/records.py) that a bundle stores to rebuild it without pickle.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..errors import ModelError, ShapeError
from ..nn.model import SpecNet
from ..nn.spec import looks_like_spec
from .records import ArchRecord

Shape = tuple[int, int, int]


@dataclass(frozen=True)
class ModelEntry:
    name: str
    description: str
    builder: Callable[..., nn.Module]  # builder(*, input_shape, num_classes) -> nn.Module
    source: str = "builtin"
    min_size: int = 1  # smallest input height/width it accepts


# What a lister adds to the description of a model whose pretrained weights are already on this
# machine (cached, or inside an installed package): `cnnkit models --pretrained` shows what runs offline.
WEIGHTS_HERE = "[weights on this machine]"

_MODELS: dict[str, ModelEntry] = {}
# prefix -> (factory(name, *, input_shape, num_classes, **kw), lister(pattern) -> [(name, description)])
_SOURCES: dict[str, tuple[Callable[..., nn.Module], Callable[[str], list[tuple[str, str]]]]] = {}
_SOURCE_PLACES: dict[str, str] = {}  # prefix -> where it was registered (for the duplicate error)


def _place(function: Callable) -> str:
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', repr(function))}"


def register_model(name: str, description: str, *, min_size: int = 1):
    """Decorator for a built-in architecture: builder(*, input_shape, num_classes).

    A name is registered once: a second registration raises ModelError (as torchvision's does).
    """

    def add(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise ModelError(f"model {name!r} is already registered (by {_place(_MODELS[name].builder)}); "
                             f"{_place(builder)} cannot register it again: choose another name")
        _MODELS[name] = ModelEntry(name, description, builder, "builtin", min_size)
        return builder

    return add


def register_source(prefix: str, factory, lister) -> None:
    """Plug in a source of models named `prefix:name`; a prefix is registered once (ModelError)."""
    caller = sys._getframe(1)
    place = f"{caller.f_globals.get('__name__', '?')} line {caller.f_lineno}"
    if prefix in _SOURCES:
        raise ModelError(f"model source {prefix!r} is already registered (by {_SOURCE_PLACES.get(prefix, '?')}); "
                         f"{place} cannot register it again: choose another prefix")
    _SOURCES[prefix] = (factory, lister)
    _SOURCE_PLACES[prefix] = place


# The Python package a library source needs, and the cnnkit extra that installs it.
_EXTRAS = {"timm": ("timm", "timm"), "hf-hub": ("timm", "timm"), "hf": ("transformers", "hf"),
           "keras": ("keras", "keras"), "kerashub": ("keras_hub", "kerashub")}
# Where `pip install 'cnnkit[EXTRA]'` is not the whole story: every keras-hub release requires tensorflow-text
# (so TensorFlow) on Linux and macOS, which its image classifiers never import; it goes in without its
# dependencies, and the kerashub extra lists the ones it does use.
INSTALL_COMMANDS = {"kerashub": "pip install 'cnnkit[kerashub]' && pip install --no-deps 'keras-hub>=0.32,<0.33'"}


def source_names() -> list[str]:
    """Every source `cnnkit models --source` takes: builtin, then each registered prefix."""
    return ["builtin", *_SOURCES]


def source_prefixes() -> str:
    """'tv:, timm:, hf:, ...': every registered prefix, for messages."""
    return ", ".join(f"{p}:" for p in _SOURCES)


def missing_extra(source: str | None) -> str | None:
    """'timm models need the timm extra: ...' when the package behind `source` is not installed."""
    import importlib.util

    if source not in _EXTRAS:
        return None
    package, extra = _EXTRAS[source]
    try:
        if importlib.util.find_spec(package) is not None:
            return None
    except (ImportError, ValueError):
        pass
    return f"{source} models need the {extra} extra: " + INSTALL_COMMANDS.get(source, f"pip install 'cnnkit[{extra}]'")


def check_source(source: str | None) -> None:
    """None or a known source; anything else is a ModelError naming the valid ones."""
    if source is None or source in source_names():
        return
    close = difflib.get_close_matches(source, source_names(), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ModelError(f"unknown model source {source!r}.{hint} The sources are: {', '.join(source_names())}")


def list_models(pattern: str = "*", source: str | None = None,
                pretrained: bool | None = None) -> list[tuple[str, str, str]]:
    """[(name, source, description)] of the built-ins and every registered source.

    A lister returns (name, description) or (name, description, has_pretrained_weights);
    `pretrained=True` keeps only the names that come with weights (False: only those without).
    An unknown `source` is a ModelError that names the valid ones.
    """
    check_source(source)
    rows = [(e.name, e.source, e.description) for e in _MODELS.values()
            if fnmatch.fnmatch(e.name, pattern) and source in (None, e.source) and not pretrained]
    for prefix, (_, lister) in _SOURCES.items():
        if source in (None, prefix):
            for row in lister(pattern):
                has_weights = bool(row[2]) if len(row) > 2 else False
                if pretrained is None or pretrained == has_weights:
                    rows.append((row[0], prefix, row[1]))
    return rows


def create_model(
    name: str,
    *,
    input_shape: Shape,
    num_classes: int,
    **kwargs,
) -> nn.Module:
    """Build `name` (a registered name, `source:name`, or a layer spec) for the given data."""
    name = name.strip()
    if name in _MODELS:
        entry = _MODELS[name]
        model = entry.builder(input_shape=tuple(input_shape), num_classes=num_classes, **kwargs)
        if min(input_shape[1:]) < entry.min_size:  # a spec net has said which layer fails; global pooling would not
            raise ShapeError(f"{name} needs images of at least {entry.min_size}x{entry.min_size}, not "
                             f"{input_shape[1]}x{input_shape[2]}; resize the data or pick a model made for "
                             "small images")
        model.cnnkit_arch = ArchRecord("builtin", name, kwargs)
        return model
    prefix = name.split(":", 1)[0] if ":" in name else None
    if prefix in _SOURCES:
        model = _SOURCES[prefix][0](name.split(":", 1)[1], input_shape=tuple(input_shape),
                                    num_classes=num_classes, **kwargs)
        if not hasattr(model, "cnnkit_arch"):  # a source may record its own (pretrained models do)
            model.cnnkit_arch = ArchRecord(prefix, name.split(":", 1)[1], kwargs)
        return model
    if looks_like_spec(name):
        return spec_model(name, input_shape, num_classes)
    prefix_match = re.match(r"([A-Za-z][\w.-]*):", name)
    if prefix_match:
        known = list(_SOURCES)
        close = difflib.get_close_matches(prefix_match.group(1), known, n=1)
        hint = f" Did you mean {close[0]}:?" if close else ""
        raise ModelError(f"unknown model source {prefix_match.group(1)!r} in {name!r}.{hint} The source prefixes "
                         f"are {source_prefixes()} (`cnnkit models --source NAME` lists each one's models)")
    close = difflib.get_close_matches(name, list(_MODELS), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ModelError(
        f"unknown model {name!r}.{hint} `cnnkit models` lists the built-ins and sources; "
        "a layer spec such as 'conv32-3,relu,maxpool2,dense10' works too."
    )


def spec_model(spec: str, input_shape: Shape, num_classes: int | None) -> SpecNet:
    """A layer spec as a model, with its record (num_classes=None: built as written)."""
    model = SpecNet(spec, input_shape, num_classes=num_classes)
    model.cnnkit_arch = ArchRecord.spec(model.spec)
    return model


def rebuild(arch: ArchRecord | dict, *, input_shape: Shape, num_classes: int) -> nn.Module:
    """Rebuild a model from the `cnnkit_arch` record stored in a bundle (the record or its JSON)."""
    arch = ArchRecord.from_dict(arch)
    source, name, kwargs = arch.source, arch.name, arch.kwargs or {}
    if source == "spec":
        return create_model(name, input_shape=input_shape, num_classes=num_classes)
    if source == "builtin":
        return create_model(name, input_shape=input_shape, num_classes=num_classes, **kwargs)
    if source in _SOURCES:
        return create_model(f"{source}:{name}", input_shape=input_shape, num_classes=num_classes, **kwargs)
    raise ModelError(f"bundle names an unknown model source {source!r}; is an optional extra missing?")
