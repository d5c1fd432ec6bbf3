"""KerasHub image classifiers as a model source, through Keras 3's PyTorch backend: `kerashub:resnet_18_imagenet`.

KerasHub (the successor of KerasCV) ships each model as a *preset*: a folder with the
backbone's `config.json` and `model.weights.h5`, `metadata.json`, the classifier's
`task.json` and `task.weights.h5`, and the preprocessing in `preprocessor.json` and
`image_converter.json`. The named presets (`cnnkit models --source kerashub`) live on
Kaggle; KerasHub fetches them through kagglehub into `$KAGGLEHUB_CACHE/models/OWNER/MODEL/
keras/PRESET/VERSION` (default ~/.cache/kagglehub). A local preset folder works too, as the
model (`kerashub:./my_preset`) or as `--weights FOLDER`.

The classifier is loaded with KerasHub's own `ImageClassifier.from_preset`, cut before its
last Dense layer (and the dropout in front of it), and handed to the Keras Applications
wrapper, `sources_keras.KerasBackbone`, which makes it an NCHW -> features torch module that
cnnkit's loop trains. The preset's image converter (`image * scale + offset` on 0-255 RGB,
and its image size) becomes the mean/std cnnkit normalises [0, 1] images with.

cnnkit never lets kagglehub look for a newer version: a named preset is read from its
versioned cache folder when its files are there, downloaded (whole) only when they are not,
and with CNNKIT_OFFLINE=1 or no network the error names the files and that folder.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib.util
import json
import os
import warnings
from pathlib import Path

from torch import nn

from ..data.sources import offline
from ..errors import ModelError
from .records import PretrainedInfo
from .registry import INSTALL_COMMANDS
from .sources_keras import KerasBackbone, _keras

PREFIX = "kerashub"
INSTALL = INSTALL_COMMANDS[PREFIX]
# What `save_to_preset` writes for an image classifier (KerasHub 0.32), the two first ones required.
PRESET_FILES = ("config.json", "model.weights.h5", "metadata.json", "task.json", "task.weights.h5",
                "preprocessor.json", "image_converter.json")
# The smallest input side given to a backbone that takes any size: the CNNs downsample 32 times (KerasHub's
# Xception pads "same" after its stem, so unlike keras:Xception it needs no 71x71).
MIN_SIDE = 32
PRETRAINED = ("imagenet", "default", "pretrained")


def _keras_hub():
    """keras_hub, imported after `_keras()` has made the PyTorch backend the one Keras starts with."""
    _keras()
    if importlib.util.find_spec("keras_hub") is None:
        raise ModelError(f"KerasHub presets need keras-hub: {INSTALL} (keras-hub's own requirements pull in "
                         "TensorFlow, which its image classifiers never use)")
    import keras_hub

    return keras_hub


def presets() -> dict[str, dict]:
    """KerasHub's built-in image-classifier presets: name -> {"metadata": ..., "kaggle_handle": ...}."""
    return dict(_keras_hub().models.ImageClassifier.presets)


def kagglehub_cache() -> Path:
    """Where kagglehub keeps what it downloads ($KAGGLEHUB_CACHE, default ~/.cache/kagglehub)."""
    try:
        from kagglehub.config import get_cache_folder

        return Path(get_cache_folder())
    except ImportError:
        return Path(os.environ.get("KAGGLEHUB_CACHE") or Path.home() / ".cache" / "kagglehub")


def cache_folder(handle: str) -> Path:
    """The folder kagglehub downloads a versioned handle (kaggle://keras/resnetv1/keras/resnet_18_imagenet/3)
    into: $KAGGLEHUB_CACHE/models/keras/resnetv1/keras/resnet_18_imagenet/3."""
    parts = handle.removeprefix("kaggle://").split("/")
    if not handle.startswith("kaggle://") or len(parts) != 5:
        raise ModelError(f"{handle}: cnnkit reads KerasHub presets from Kaggle handles with a version "
                         "(kaggle://OWNER/MODEL/keras/PRESET/VERSION)")
    return kagglehub_cache().joinpath("models", *parts)


def _has(folder: Path, weights: bool) -> bool:
    return (folder / "config.json").is_file() and (not weights or (folder / "model.weights.h5").is_file())


def lister(pattern: str) -> list[tuple[str, str, bool]]:
    if importlib.util.find_spec("keras_hub") is None:
        return []
    rows = []
    for name, preset in sorted(presets().items()):
        if not fnmatch.fnmatchcase(f"{PREFIX}:{name}", pattern) and not fnmatch.fnmatchcase(name, pattern):
            continue
        meta = preset.get("metadata", {})
        here = "cached" if _has(cache_folder(preset["kaggle_handle"]), True) else "from Kaggle"
        rows.append((f"{PREFIX}:{name}", f"KerasHub {meta.get('path', '?')} image classifier, "
                     f"{meta.get('params', 0) / 1e6:.1f} M parameters; weights {here}", True))
    return rows


# --------------------------------------------------------------- finding the preset

def _missing(name: str, folder: Path, handle: str, reason: str, weights: bool) -> ModelError:
    what = "" if weights else " (cnnkit builds the architecture from its config.json, also for random weights)"
    env = os.environ.get("KAGGLEHUB_CACHE")
    return ModelError(
        f"the preset of {PREFIX}:{name} is not in KerasHub's cache and cannot be downloaded here ({reason}){what}. "
        f"KerasHub fetches {handle} through kagglehub into $KAGGLEHUB_CACHE "
        f"({'KAGGLEHUB_CACHE=' + env if env else 'unset: ~/.cache/kagglehub'}): put the preset's files "
        f"{', '.join(PRESET_FILES[:-1])} and {PRESET_FILES[-1]} (as `save_to_preset` writes them; the first two "
        f"are required) into {folder}, or pass --weights FOLDER with a preset folder")


def _download(name: str, handle: str, folder: Path, weights: bool) -> Path:
    """The preset's cache folder, downloading the whole preset into it when its files are not there."""
    if _has(folder, weights):
        return folder
    if offline():
        raise _missing(name, folder, handle, f"CNNKIT_OFFLINE={os.environ.get('CNNKIT_OFFLINE')}", weights)
    try:
        import kagglehub
    except ImportError:
        raise _missing(name, folder, handle, f"kagglehub is not installed: {INSTALL}", weights) from None
    try:
        got = Path(kagglehub.model_download(handle.removeprefix("kaggle://")))
    except Exception as e:  # noqa: BLE001  (requests' connection errors, Kaggle's HTTP errors: say why, one line)
        reason = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}" if str(e) else type(e).__name__
        raise _missing(name, folder, handle, reason, weights) from e
    if not _has(got, weights):
        raise _missing(name, folder, handle, f"kagglehub gave {got}, which holds no config.json/model.weights.h5",
                       weights)
    return got


def _preset_folder(name: str, weights: str | None) -> tuple[Path, str, str | None]:
    """(folder to load, where the weights come from for a person, the name a bundle rebuilds it under)."""
    if weights and weights not in PRETRAINED:
        folder = Path(weights).expanduser()
        if not folder.is_dir() or not _has(folder, True):
            raise ModelError(f"--weights {weights}: not a KerasHub preset folder (it needs config.json and "
                             "model.weights.h5, as `save_to_preset` writes them); give imagenet or such a folder")
        return folder, str(folder), str(folder.resolve())
    local = Path(name).expanduser()
    if local.is_dir():
        if not _has(local, bool(weights)):
            raise ModelError(f"kerashub:{name}: the folder holds no KerasHub preset (config.json"
                             + (" and model.weights.h5" if weights else "") + ", as `save_to_preset` writes them)")
        return local, str(local), str(local.resolve()) if str(local.resolve()) != name else None
    known = presets()
    if name not in known:
        close = difflib.get_close_matches(name, list(known), n=3)
        raise ModelError(f"kerashub:{name} is neither a KerasHub image-classifier preset nor a preset folder"
                         + (f"; did you mean {', '.join(close)}?" if close else "")
                         + " `cnnkit models --source kerashub` lists them")
    handle = known[name]["kaggle_handle"]
    folder = _download(name, handle, cache_folder(handle), bool(weights))
    return folder, f"KerasHub's cache ({folder})", None


# --------------------------------------------------------------- building

def _task_is_classifier(folder: Path) -> bool:
    """Whether the preset's task.json is an image classifier (a segmentation preset's is not)."""
    try:
        task = json.loads((folder / "task.json").read_text())
    except (OSError, ValueError):
        return False
    return str(task.get("class_name", "")).endswith("ImageClassifier")


def _features(keras, task):
    """The classifier as a Keras model from its images to the vector its last Dense layer takes.

    The dropout right before that Dense goes too: cnnkit's head comes after the features. A head
    that is one Sequential (VGG's) is replayed without its last layer."""
    history = task.outputs[0]._keras_history
    last = history.operation
    x = last._inbound_nodes[history.node_index].input_tensors[0]
    if isinstance(last, keras.Sequential):
        *body, last = last.layers
        while body and isinstance(body[-1], keras.layers.Dropout):
            body.pop()
        for layer in body:
            x = layer(x)
    else:
        while isinstance(x._keras_history.operation, keras.layers.Dropout):
            x = x._keras_history.operation._inbound_nodes[x._keras_history.node_index].input_tensors[0]
    if not isinstance(last, keras.layers.Dense) or len(x.shape) != 2:
        raise ModelError(f"{type(task).__name__} does not end in a Dense layer on a feature vector; cnnkit "
                         "cannot take its classifier off")
    return keras.Model(task.inputs, x), last


def _normalisation(keras_hub, folder: Path) -> dict:
    """mean/std on [0, 1] RGB and the image size, from the preset's image converter.

    KerasHub feeds `v * scale + offset` for v in 0..255; cnnkit feeds `(x - mean) / std` for
    x = v / 255: the same when std = 1 / (255 * scale) and mean = -offset * std, per channel."""
    if not (folder / "image_converter.json").is_file():
        return {}
    converter = keras_hub.layers.ImageConverter.from_preset(str(folder))
    scale, offset = converter.scale, converter.offset

    def per_channel(value, default: float) -> list[float]:
        if value is None:
            return [default] * 3
        values = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value])]
        return values * 3 if len(values) == 1 else values

    scales, offsets = per_channel(scale, 1.0), per_channel(offset, 0.0)
    std = tuple(1 / (255 * s) for s in scales)
    mean = tuple(-o * d for o, d in zip(offsets, std, strict=True))
    size = tuple(int(v) for v in converter.image_size) if converter.image_size else None
    return {"mean": mean, "std": std, "recommended_size": size}


def build(name: str, *, in_chans: int, weights: str | None = None) -> tuple[nn.Module, PretrainedInfo]:
    """A KerasHub image classifier without its last Dense, as a KerasBackbone for `in_chans`; (model, info)."""
    if in_chans not in (1, 3):
        raise ModelError(f"kerashub:{name} takes 1- or 3-channel images, not {in_chans}")
    keras_hub = _keras_hub()
    keras = _keras()
    folder, where, rebuild_name = _preset_folder(name, weights)
    # A preset whose task is not a classifier (MiT's segmentation presets, a backbone alone) gets KerasHub's
    # default classifier for its backbone; its Dense is taken off anyway, so its class count does not matter.
    # No preprocessor: the image converter is read on its own (_normalisation) and cnnkit does what it does.
    classifier_task = _task_is_classifier(folder)
    kwargs = {"preprocessor": None} if classifier_task else {"preprocessor": None, "num_classes": 1}
    try:
        # Built on the CPU, as the Applications are (sources_keras.build): the variables stay leaf Parameters.
        with keras.device("cpu"), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning)
            task = keras_hub.models.ImageClassifier.from_preset(str(folder), load_weights=bool(weights),
                                                                dtype="float32", **kwargs)
            model, classifier = _features(keras, task)
    except (ValueError, OSError, KeyError, TypeError) as e:  # no image classifier, a damaged .h5, a bad config
        raise ModelError(f"kerashub:{name}: KerasHub cannot load the preset in {folder} "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
    removed = classifier.name if classifier_task else \
        f"{classifier.name} (the head KerasHub's {type(task).__name__} adds; the preset has no classifier)"
    backbone = KerasBackbone(model, name=name, in_chans=in_chans, bgr=False, source=PREFIX, removed=removed)
    _, height, width, _ = task.inputs[0].shape
    if height and width:  # a fixed input (ViT's position embeddings): that size and no other
        sizes = {"min_size": (height, width), "recommended_size": (height, width), "exact_size": True}
    else:
        sizes = {"min_size": (MIN_SIDE, MIN_SIDE)}
    preprocessing = _normalisation(keras_hub, folder) if weights else {}
    if sizes.get("exact_size"):
        preprocessing.pop("recommended_size", None)
    loaded = f"kerashub:{name} weights from {where}" if weights else \
        f"kerashub:{name} with random weights (no --weights given; the architecture from {folder})"
    adapted = None
    if in_chans == 1:
        adapted = ("grey images repeated to the 3 channels the first convolution takes "
                   "(the same as summing its filters over colour)")
    return backbone, PretrainedInfo(loaded, adapted_channels=adapted, rebuild_name=rebuild_name,
                                    **sizes, **preprocessing)
