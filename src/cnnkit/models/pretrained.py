"""From a pretrained model (torchvision, timm, a cnnkit run or bundle) to a model for new data.

`build_transfer` does the guide's steps 1 and 3: load the pretrained network
(with its library's own weight mechanism), remove its classifier, and add what
the new data needs — a first convolution adapted to the data's channels, a
resize to the size the backbone expects, a new head for the new classes. It
returns a `TransferNet` whose `cnnkit_arch` record lets `cnnkit.load` rebuild
the same structure from a bundle alone (source `transfer`), plus a `TransferPlan`
(models/records.py) that says what was loaded, removed and added, and the
normalisation to use.
"""

from __future__ import annotations

import fnmatch
import importlib
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import BundleError, ModelError
from . import sources_torchvision
from .adapt import TransferNet, adapt_in_channels, first_conv, strip_classifier
from .bundle import META, BundleMeta, find_bundle, is_bundle_path, load_bundle, read_meta
from .packaged import ALIASES
from .records import ArchRecord, PretrainedInfo, TransferPlan
from .registry import register_source

Shape = tuple[int, int, int]

# Sources whose `build(name, *, in_chans, weights) -> (backbone, PretrainedInfo)` loads the weights through the
# library's own mechanism and adapts the first convolution itself; `lister(pattern)` feeds `cnnkit
# models`. Imported on first use: each library is an optional extra.
LIBRARY_SOURCES = {"timm": "sources_timm", "hf": "sources_hf", "keras": "sources_keras",
                   "kerashub": "sources_kerashub"}


def library(source: str):
    """The module of a library source (sources_timm, sources_hf, sources_keras, sources_kerashub)."""
    return importlib.import_module(f".{LIBRARY_SOURCES[source]}", __package__)


def base_record(model: str) -> dict[str, Any]:
    """Where the backbone comes from: {"source": tv|timm|bundle, ...}."""
    model = ALIASES.get(model.strip(), model.strip())
    if is_bundle_path(model):
        folder = find_bundle(model)
        meta = read_meta(folder)
        return {"source": "bundle", "path": str(folder), "arch": meta.architecture.to_dict(),
                "input_shape": list(meta.input_shape), "num_classes": meta.num_classes}
    prefix, _, name = model.partition(":")
    if prefix == "tv":
        return {"source": "tv", "name": name}
    if prefix in LIBRARY_SOURCES:
        return {"source": prefix, "name": name}
    if prefix == "hf-hub":
        return {"source": "timm", "name": model}
    if Path(model).expanduser().exists():
        raise BundleError(f"{model} is neither a cnnkit bundle nor a run directory with best/ or last/")
    # A bare name: torchvision's if it has one (the guide's resnet18, vgg16 ...), else timm's.
    if name == "" and prefix in sources_torchvision._names():
        return {"source": "tv", "name": prefix}
    try:
        import timm

        if timm.is_model(model.split(".")[0]):
            return {"source": "timm", "name": model}
    except ImportError:
        pass
    raise ModelError(f"--model {model!r}: give a run directory or bundle, tv:NAME, timm:NAME or hf-hub:ORG/NAME "
                     "(`cnnkit models --pretrained` lists them)")


def load_state_file(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from .safetensors (preferred) or .pth/.pt (torch.load weights_only=True)."""
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (OSError, SafetensorError) as e:
            raise ModelError(f"{path} cannot be read as safetensors ({e}); is it truncated? "
                             "Download it again") from e
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (an unpickling refusal or a damaged file: say which file)
        raise ModelError(f"{path} cannot be loaded as plain tensors ({type(e).__name__}: {e}); "
                         "cnnkit only loads safetensors or weights-only .pth files") from e
    for key in ("state_dict", "model", "model_state"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ModelError(f"{path} holds no state dict")
    return state


def load_partial(model: nn.Module, state: dict[str, torch.Tensor], origin: str) -> list[str]:
    """Load every tensor whose name and shape fit (the old classifier does not); the skipped names."""
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fits:
        raise ModelError(f"no tensor of {origin} fits this model; was it saved from another architecture?")
    model.load_state_dict(fits, strict=False)
    return sorted(set(state) - set(fits))


SCRATCH = ("none", "random")


def transfer_weights(model: str, weights: str | None) -> str | None:
    """The weights `finetune` asks for: unsaid, a library model's ImageNet weights (the guide's step 1,
    as Keras's weights="imagenet" and fastai do) and a run or bundle's own; none/random: from scratch."""
    if weights is not None and weights.lower() in SCRATCH:
        return None
    if weights is None and base_record(model)["source"] != "bundle":
        return "imagenet"
    return weights


def _backbone(base: dict, *, in_chans: int, weights: str | None) -> tuple[nn.Module, PretrainedInfo]:
    """The pretrained network (classifier still on), first conv for `in_chans` channels; (model, info)."""
    source = base["source"]
    if source == "bundle":
        if weights:
            raise ModelError("--weights is for tv:/timm: models; a run directory or bundle brings its own weights")
        if "path" in base:
            model, meta = load_bundle(base["path"])
            size = tuple(meta.input_shape[1:])
            info = PretrainedInfo(f"the cnnkit bundle {base['path']} ({meta.architecture.name}, "
                                  f"{meta.summary.get('dataset', '?')}, test accuracy "
                                  f"{meta.summary.get('test_accuracy', '?')})",
                                  mean=tuple(meta.mean), std=tuple(meta.std), min_size=size, recommended_size=size,
                                  exact_size=True)
        else:  # rebuilding a saved transfer model: the structure only, the weights come from its bundle
            from .registry import rebuild

            model = rebuild(base["arch"], input_shape=tuple(base["input_shape"]), num_classes=base["num_classes"])
            info = PretrainedInfo("structure only", min_size=tuple(base["input_shape"][1:]), exact_size=True)
        model.train()
    elif source == "tv":
        path = _weights_file(weights)
        model, info = sources_torchvision.build(base["name"], weights=None if path else weights)
        if path:
            skipped = load_partial(model, load_state_file(path), str(path))
            info = PretrainedInfo(f"tv:{base['name']} weights from {path}"
                                  + (f" (left out: {', '.join(skipped[:4])})" if skipped else ""))
    elif source in LIBRARY_SOURCES:
        return library(source).build(base["name"], in_chans=in_chans, weights=weights or None)
    else:
        raise ModelError(f"unknown pretrained source {source!r}")
    adapted = adapt_in_channels(model, in_chans)
    return model, info.replace(adapted_channels=adapted) if adapted else info


def pretrained_classifier(model: str, weights: str = "imagenet") -> tuple[nn.Module, BundleMeta]:
    """A pretrained library model as its library made it, classifier included, with the preprocessing
    its weights were trained with: what predict, explain and export take for a name instead of a bundle
    (`cnnkit predict efficientnet-lite0 cat.png`)."""
    base = base_record(model)
    source, name = base["source"], base.get("name", "")
    if source == "tv":
        net, info = sources_torchvision.build(name, weights=weights)
    elif source == "timm":
        net, info = library("timm").build(name, in_chans=3, weights=weights, classifier=True)
    else:
        raise ModelError(f"{model}: predict, explain and export take a run, a bundle, or a tv:/timm: model with "
                         "its ImageNet classifier; finetune other sources first (`cnnkit finetune --model ...`)")
    num_classes = _out_features(net)
    size = info.recommended_size or (224, 224)
    meta = BundleMeta(ArchRecord(source, name), [3, *size], imagenet_class_names(num_classes),
                      list(info.mean or (0.485, 0.456, 0.406)), list(info.std or (0.229, 0.224, 0.225)),
                      summary={"pretrained": info.loaded, "model": model}, crop_pct=info.crop_pct)
    net.cnnkit_arch = meta.architecture
    return net.eval(), meta


def _out_features(net: nn.Module) -> int:
    """The classes of a library classifier: its last linear layer's outputs (timm's and torchvision's)."""
    last = [m for m in net.modules() if isinstance(m, nn.Linear)]
    if not last:
        raise ModelError(f"{type(net).__name__} has no linear classifier to read its classes from")
    return last[-1].out_features


def imagenet_class_names(num_classes: int) -> list[str]:
    """The 1,000 ImageNet-1k class names (torchvision's list, in the index order every library uses)."""
    if num_classes == 1000:
        from torchvision.models._meta import _IMAGENET_CATEGORIES

        return list(_IMAGENET_CATEGORIES)
    return [f"class {i}" for i in range(num_classes)]


def _weights_file(weights: str | None) -> Path | None:
    if not weights or weights in sources_torchvision.IMAGENET:
        return None
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    if path.exists():
        raise ModelError(f"--weights {weights}: for tv: models give imagenet, a weights enum name or a file")
    return None  # a torchvision weights enum member such as IMAGENET1K_V2


def _channel_stats(values: tuple[float, ...] | None, channels: int) -> tuple[float, ...] | None:
    if values is None:
        return None
    if len(values) == channels:
        return tuple(values)
    mean = sum(values) / len(values)  # a grey image into an RGB network: the average of the channels
    return (mean,) * channels


def build_transfer(model: str, *, input_shape: Shape, num_classes: int, weights: str | None = None,
                   head: str | None = None, input_size: int | None = None) -> tuple[TransferNet, TransferPlan]:
    """Load `model` (tv:/timm:/hf-hub: name, run directory or bundle) and adapt it to the data; (net, plan)."""
    c, h, w = input_shape
    base = base_record(model)
    if base["source"] == "bundle" and weights and is_bundle_path(weights):
        raise ModelError("give the run or bundle once, as --model")
    if weights and is_bundle_path(weights):  # --model tv:resnet18 --weights runs/x: that run's weights
        folder = find_bundle(weights)
        trained, _ = load_bundle(folder)
        donor = trained.backbone if isinstance(trained, TransferNet) else trained
        backbone, info = _backbone(base, in_chans=c, weights=None)
        skipped = load_partial(backbone, donor.state_dict(), str(folder))
        info = info.replace(loaded=f"{model} weights from the run {folder}"
                            + (f" (left out {len(skipped)})" if skipped else ""))
    else:
        backbone, info = _backbone(base, in_chans=c, weights=weights)
    if info.first_conv is None:
        try:
            info = info.replace(first_conv=first_conv(backbone)[0])
        except ModelError:  # a Keras backbone: its convolutions are Keras layers
            pass
    num_features, removed = strip_classifier(backbone)
    if info.classifier is None:
        info = info.replace(classifier=removed)
    resize = None
    if input_size:
        resize = [int(input_size), int(input_size)]
    elif info.exact_size and list(info.min_size) != [h, w]:
        resize = list(info.min_size)  # a cnnkit spec model has dense layers sized for its input
    elif info.min_size and (h < info.min_size[0] or w < info.min_size[1]):
        resize = list(info.min_size)
    net = TransferNet(backbone, num_features, num_classes, head=head, resize=tuple(resize) if resize else None)
    record_base = {k: v for k, v in base.items() if k != "path"}
    if info.rebuild_name:  # the architecture came from a local folder (hf: --weights FOLDER)
        record_base["name"] = info.rebuild_name
    net.cnnkit_arch = ArchRecord.transfer(model, base=record_base, in_chans=c, head=head, resize=resize)
    return net, TransferPlan(info, num_features=num_features, removed=removed,
                             resize=tuple(resize) if resize else None,
                             mean=_channel_stats(info.mean, c), std=_channel_stats(info.std, c))


def _transfer_factory(name: str, *, input_shape: Shape, num_classes: int, base: dict, in_chans: int,
                      head: str | None = None, resize: list[int] | None = None) -> TransferNet:
    """Rebuild a TransferNet's structure from its arch record (weights come from the bundle)."""
    backbone, _ = _backbone(base, in_chans=in_chans, weights=None)
    num_features, _ = strip_classifier(backbone)
    return TransferNet(backbone, num_features, num_classes, head=head, resize=tuple(resize) if resize else None)


def _source_factory(prefix: str):
    """`create_model("tv:resnet18", ...)`: the model with a fresh head for the data (random or --weights)."""

    def factory(name: str, *, input_shape: Shape, num_classes: int, weights: str | None = None,
                head: str | None = None, input_size: int | None = None) -> nn.Module:
        net, _ = build_transfer(f"{prefix}:{name}", input_shape=input_shape, num_classes=num_classes,
                                weights=weights, head=head, input_size=input_size)
        return net  # build_transfer has written its cnnkit_arch record (source "transfer")

    return factory


def runs_lister(pattern: str) -> list[tuple[str, str, bool]]:
    """Run directories under ./runs with a best/ bundle: pretrained weights of the user's own."""
    rows = []
    root = Path("runs")
    if not root.is_dir():
        return rows
    for folder in sorted(root.iterdir()):
        if folder.is_symlink() or not (folder / "best" / META).is_file():
            continue
        if not fnmatch.fnmatch(str(folder), pattern) and not fnmatch.fnmatch(folder.name, pattern):
            continue
        try:
            meta = read_meta(folder / "best")
        except BundleError:
            continue
        acc = meta.summary.get("test_accuracy")
        rows.append((str(folder), f"cnnkit run: {meta.architecture.name} on {meta.summary.get('dataset', '?')}"
                     + (f", test accuracy {acc:.4f}" if isinstance(acc, float) else ""), True))
    return rows


register_source("tv", _source_factory("tv"), sources_torchvision.lister)
for _prefix in LIBRARY_SOURCES:
    register_source(_prefix, _source_factory(_prefix), lambda pattern, _p=_prefix: library(_p).lister(pattern))
register_source("hf-hub", _source_factory("hf-hub"), lambda pattern: [])
def _run_factory(name: str, **_: Any) -> nn.Module:
    raise ModelError(f"give the run directory itself (--model runs/{name}); `cnnkit finetune` transfers it")


register_source("run", _run_factory, runs_lister)
register_source("transfer", _transfer_factory, lambda pattern: [])
