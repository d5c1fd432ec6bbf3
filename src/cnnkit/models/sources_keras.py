"""Keras Applications as a model source, through Keras 3's PyTorch backend: `keras:ResNet50`.

With `KERAS_BACKEND=torch` a Keras model is a `torch.nn.Module` whose variables are torch
Parameters, so cnnkit's own Trainer (optimizer, schedule, checkpoints, bundles) trains it.
`KerasBackbone` bridges the three places where Keras and PyTorch differ:

- layout: cnnkit batches are NCHW, the Applications are built channels-last (NHWC), so the
  wrapper permutes; grey data is repeated to three channels, which gives exactly what
  summing the first convolution's filters over colour would (a convolution is linear);
- train/eval: Keras decides per call (`training=`), not from `module.train()`, so the
  wrapper passes `training=self.training`; a frozen BatchNormalization (its gamma/beta
  have `requires_grad=False`) gets `trainable=False`, which in Keras means inference mode;
- preprocessing: each family expects its own input scale ('caffe' BGR 0-255 minus the
  ImageNet means, 'tf' [-1, 1], 'torch' ImageNet mean/std, or raw 0-255 when the model
  rescales itself), expressed here as the mean/std cnnkit normalises [0, 1] images with.

Weights come through Keras's own mechanism (`keras.utils.get_file`, cached in
`$KERAS_HOME/models`, default ~/.keras/models, checked against Keras's hash) or from a
local `.h5` file with `--weights PATH`. Keras moving statistics are Parameters with
`requires_grad=False`, so they travel in the bundle like any other tensor.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import importlib.util
import os
import re
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from ..data.sources import offline
from ..errors import ModelError
from .adapt import BackboneAdapter
from .records import PretrainedInfo

PREFIX = "keras"

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_RGB = (123.68 / 255, 116.779 / 255, 103.939 / 255)

# What each family's `preprocess_input` does, as (mean, std) on [0, 1] RGB images, and
# whether the network wants BGR ('caffe'). Raw 0-255 (std 1/255): the model rescales itself.
PREPROCESS = {
    "caffe": (CAFFE_MEAN_RGB, (1 / 255,) * 3, True),
    "tf": ((0.5,) * 3, (0.5,) * 3, False),
    "torch": (IMAGENET_MEAN, IMAGENET_STD, False),
    "raw": ((0.0,) * 3, (1 / 255,) * 3, False),
}

# name pattern -> (preprocessing, smallest input side with include_top=False, ImageNet input side)
FAMILIES = [
    (r"ConvNeXt.*", "raw", 32, 224),
    (r"DenseNet.*", "torch", 32, 224),
    (r"EfficientNetB\d", "raw", 32, None),
    (r"EfficientNetV2.*", "raw", 32, None),
    (r"InceptionResNetV2|InceptionV3", "tf", 75, 299),
    (r"Xception", "tf", 71, 299),
    (r"MobileNet|MobileNetV2|NASNetMobile|ResNet\d+V2", "tf", 32, 224),
    (r"NASNetLarge", "tf", 32, 331),
    (r"MobileNetV3.*", "raw", 32, 224),
    (r"ResNet\d+|VGG\d+", "caffe", 32, 224),
]
EFFICIENTNET_SIZES = {"B0": 224, "B1": 240, "B2": 260, "B3": 300, "B4": 380, "B5": 456, "B6": 528, "B7": 600,
                      "V2B0": 224, "V2B1": 240, "V2B2": 260, "V2B3": 300, "V2S": 384, "V2M": 480, "V2L": 480}
NAMES = ["ConvNeXtBase", "ConvNeXtLarge", "ConvNeXtSmall", "ConvNeXtTiny", "ConvNeXtXLarge", "DenseNet121",
         "DenseNet169", "DenseNet201", *[f"EfficientNetB{i}" for i in range(8)], "EfficientNetV2B0",
         "EfficientNetV2B1", "EfficientNetV2B2", "EfficientNetV2B3", "EfficientNetV2L", "EfficientNetV2M",
         "EfficientNetV2S", "InceptionResNetV2", "InceptionV3", "MobileNet", "MobileNetV2", "MobileNetV3Large",
         "MobileNetV3Small", "NASNetLarge", "NASNetMobile", "ResNet101", "ResNet101V2", "ResNet152",
         "ResNet152V2", "ResNet50", "ResNet50V2", "VGG16", "VGG19", "Xception"]


def family(name: str) -> tuple[str, int, int]:
    """(preprocessing mode, smallest input side, ImageNet input side) of an Application."""
    if name not in NAMES:
        import difflib

        close = difflib.get_close_matches(name, NAMES, n=3)
        raise ModelError(f"keras:{name} is not a Keras Application" + (f"; did you mean {', '.join(close)}?"
                         if close else "") + " `cnnkit models --source keras` lists them")
    for pattern, mode, smallest, size in FAMILIES:
        if re.fullmatch(pattern, name):
            return mode, smallest, size or EFFICIENTNET_SIZES[name.removeprefix("EfficientNet")]
    raise ModelError(f"keras:{name}: no preprocessing known for this Application")


def _stage(layer_name: str) -> str | None:
    """The stage a layer belongs to, from its name (`stack_?N` is KerasHub's ResNet: stack0_block1_conv)."""
    match = re.match(r"(.*?(?:stage_?\d+|stack_?\d+|block_?\d+|conv\d+(?![a-z\d])|dense_?block\d+))",
                     layer_name)
    return match.group(1) if match else None


def ordered_layers(model) -> list:
    """The layers of a Keras model, input to output, nested models opened (a KerasHub backbone sits
    inside its classifier as one layer); a composite layer (a block class) stays one entry."""
    out = []
    for layer in model.layers:
        inner = getattr(layer, "layers", None)
        out.extend(ordered_layers(layer) if isinstance(inner, list) and inner else [layer])
    return out


def weights_dir() -> Path:
    """Where keras.utils.get_file caches Application weights (Keras reads KERAS_HOME once, at import)."""
    try:
        from keras.src.backend.config import keras_home

        home = Path(keras_home())
    except ImportError:
        home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    if home.exists() and not os.access(home, os.W_OK):
        home = Path("/tmp/.keras")  # what get_file falls back to
    return home / "models"


class _DownloadRefused(BaseException):
    """Raised instead of downloading under CNNKIT_OFFLINE=1. Not an Exception on purpose: get_file's
    clean-up (`except Exception`) would delete a cached file whose hash did not match."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


@contextlib.contextmanager
def _downloads(allowed: bool):
    """Let get_file download, or make it raise _DownloadRefused with the URL it wanted."""
    if allowed:
        yield
        return
    from keras.src.utils import file_utils

    def refuse(url, *_args, **_kwargs):
        raise _DownloadRefused(url)

    original = file_utils.urlretrieve
    file_utils.urlretrieve = refuse
    try:
        yield
    finally:
        file_utils.urlretrieve = original


def _keras():
    """keras with the torch backend (set before its first import; an earlier other backend is an error)."""
    if importlib.util.find_spec("keras") is None:
        raise ModelError("Keras Applications need Keras 3: pip install 'cnnkit[keras]'")
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "torch"
    import keras

    if not hasattr(keras, "config") or keras.config.backend() != "torch":
        raise ModelError(f"keras was imported with the {getattr(keras.config, 'backend', lambda: '?')()} "
                         "backend; cnnkit trains Keras models with its PyTorch backend: set "
                         "KERAS_BACKEND=torch before anything imports keras")
    return keras


def lister(pattern: str) -> list[tuple[str, str, bool]]:
    if importlib.util.find_spec("keras") is None:
        return []
    rows = [(f"{PREFIX}:{n}", "Keras Applications (Keras 3, PyTorch backend); weights: imagenet", True)
            for n in NAMES]
    pattern = pattern.lower()  # Keras names are CamelCase: 'resnet5*' should find ResNet50
    return [r for r in rows if fnmatch.fnmatchcase(r[0].lower(), pattern)
            or fnmatch.fnmatchcase(r[0][len(PREFIX) + 1:].lower(), pattern)]


class KerasBackbone(BackboneAdapter, nn.Module):
    """A Keras model that ends in a feature vector (a Keras Application built with include_top=False and
    global average pooling, a KerasHub classifier cut before its last Dense) as an NCHW -> features module.

    `source` and `name` say what it is (`keras:ResNet50`, `kerashub:resnet_18_imagenet`), `removed` what
    was taken off to get the features."""

    def __init__(self, model, *, name: str, in_chans: int, bgr: bool, source: str = PREFIX,
                 removed: str = "the Keras top (built with include_top=False, pooling='avg')") -> None:
        super().__init__()
        # The Keras model stays out of the torch module tree: its own parameter names are its layer
        # names, which Keras numbers from a process-wide counter (conv2d_94), so a second build in the
        # same process would not match a saved bundle. Its variables are registered here instead,
        # under names made of their position and variable name, the same on every build.
        # `variables`, not `weights`: it also holds the dropout layers' seed-generator states, so that
        # checkpoints restore them and a resumed run draws the same dropout masks.
        self.__dict__["keras_model"] = model
        values = [v.value for v in model.variables]
        if not all(isinstance(t, nn.Parameter) and t.is_leaf for t in values):  # see build(): built on the CPU
            raise ModelError(f"{source}:{name}: Keras made its variables on another device; cnnkit could not "
                             "take them over as parameters")
        self.params = nn.ParameterDict({f"{i:04d}_{v.name}": v.value for i, v in enumerate(model.variables)})
        self.name = name
        self.in_chans = in_chans
        self.bgr = bgr
        self.source = source
        self.removed = removed
        self.num_features = int(model.output_shape[-1])
        # Every BatchNormalization, also those inside nested models and composite block layers.
        self._batchnorms = [layer for layer in model._flatten_layers(include_self=False)
                            if type(layer).__name__ == "BatchNormalization"]

    def _names(self, layer) -> list[str]:
        """The parameter names (in this module) of a Keras layer's trainable variables (even when frozen)."""
        own = {id(p): f"params.{n}" for n, p in self.params.items()}
        return [own[id(v.value)] for v in layer.weights if v.name not in ("moving_mean", "moving_variance")
                and v.dtype.startswith("float") and id(v.value) in own]

    def cnnkit_strip_classifier(self) -> tuple[int, str]:
        return self.num_features, self.removed

    def cnnkit_groups(self) -> list[tuple[str, list[str]]]:
        """Stages from the layer names (conv2_block1_* -> conv2, block_3_* -> block_3, *_stage_1_* ...).

        Layers with no stage in their name join the group before them (the stem when first); a
        network whose names say nothing (Inception's conv2d_N) is cut into five even parts.
        """
        weighted = [(layer.name, self._names(layer)) for layer in ordered_layers(self.keras_model)]
        weighted = [(n, ps) for n, ps in weighted if ps]
        groups: list[tuple[str, list[str]]] = []
        for layer_name, names in weighted:
            stage = _stage(layer_name)
            if not groups:
                groups.append((stage or "stem", list(names)))
            elif stage is None or stage == groups[-1][0]:
                groups[-1][1].extend(names)
            else:
                groups.append((stage, list(names)))
        if len(groups) >= 3:
            return groups
        size = -(-len(weighted) // 5)
        parts = [weighted[i:i + size] for i in range(0, len(weighted), size)]
        # "part1".. rather than layer names: those are numbered per process and change with every build.
        return [(f"part{i}", [p for _, ps in part for p in ps]) for i, part in enumerate(parts, start=1)]

    def cnnkit_batchnorm_training(self) -> dict[str, bool]:
        """Each BatchNormalization parameter -> whether the layer normalises with batch statistics now."""
        out = {}
        for layer in self._batchnorms:
            names = self._names(layer)
            params = dict(self.named_parameters())
            training = self.training and any(params[n].requires_grad for n in names)
            out.update(dict.fromkeys(names, training))
        return out

    def _sync_batchnorm(self) -> None:
        """Keras runs a BatchNormalization with trainable=False in inference mode: freeze = eval, as in torch."""
        for layer in self._batchnorms:
            params = [v.value for v in layer.weights if v.name in ("gamma", "beta")]
            wanted = any(p.requires_grad for p in params) if params else layer.trainable
            if layer.trainable != wanted:
                layer.trainable = wanted

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1 and self.in_chans == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.bgr:
            x = x.flip(1)
        if self.training:
            self._sync_batchnorm()
        # Keras puts every tensor it makes on its own global device; make that the batch's device.
        with _keras().device(str(x.device)):
            return self.keras_model(x.permute(0, 2, 3, 1).contiguous(), training=self.training)

    def __deepcopy__(self, memo: dict) -> KerasBackbone:
        """A copy whose registered parameters are the copied Keras model's own variables (EMA copies the model).

        A plain deepcopy would give the copied Keras model one set of tensors and the copied
        ParameterDict another, so the copy would compute with weights nothing ever updates."""
        twin = KerasBackbone(copy.deepcopy(self.keras_model, memo), name=self.name, in_chans=self.in_chans,
                             bgr=self.bgr, source=self.source, removed=self.removed)
        with torch.no_grad():
            for (_, mine), (_, theirs) in zip(self.params.items(), twin.params.items(), strict=True):
                theirs.copy_(mine)
                theirs.requires_grad_(mine.requires_grad)
        twin.train(self.training)
        memo[id(self)] = twin
        return twin

    def extra_repr(self) -> str:
        return f"{self.source}:{self.name}, {self.num_features} features, {self.in_chans}-channel input"


def _offline_error(name: str, url: str | None, reason: str) -> ModelError:
    if url:
        path = weights_dir() / url.rsplit("/", 1)[1]
        hint = f"Download {url} and put it at {path}"
        if path.exists():
            hint += " (a file is there, but its hash is not the one Keras expects: download it again)"
    else:
        hint = f"Put the Keras weights file into {weights_dir()}"
    return ModelError(f"the ImageNet weights of keras:{name} are not cached and cannot be downloaded here "
                      f"({reason}). {hint}, or pass --weights PATH to a no-top .h5 weights file")


def build(name: str, *, in_chans: int, weights: str | None = None) -> tuple[nn.Module, PretrainedInfo]:
    """A Keras Application without its top, as a KerasBackbone for `in_chans` channels; (model, info)."""
    mode, smallest, size = family(name)
    if in_chans not in (1, 3):
        raise ModelError(f"keras:{name} takes 1- or 3-channel images, not {in_chans}")
    keras = _keras()
    source = None
    if weights in ("imagenet", "default", "pretrained"):
        keras_weights = "imagenet"
    elif weights:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelError(f"--weights {weights}: no such file; give imagenet or a Keras no-top .h5 weights file")
        keras_weights, source = str(path), str(path)
    else:
        keras_weights = None
    constructor = getattr(keras.applications, name)
    kwargs = dict(include_top=False, weights=keras_weights, input_shape=(None, None, 3), pooling="avg")
    if name.startswith(("MobileNetV3", "ConvNeXt", "EfficientNetV2")):  # B0-B7 always rescale
        kwargs["include_preprocessing"] = True
    try:
        # Built on the CPU: on a CUDA machine Keras would make each variable `Parameter(...).to("cuda")`, a
        # non-leaf tensor that no optimizer could train; cnnkit moves the parameters itself afterwards.
        with _downloads(allowed=not offline()), warnings.catch_warnings(), \
                keras.device("cpu"):
            # "input_shape is undefined ... weights for (224, 224) loaded": any size is fine without the top
            warnings.filterwarnings("ignore", message=".*input_shape.*", category=UserWarning)
            model = constructor(**kwargs)
    except _DownloadRefused as e:
        raise _offline_error(name, e.url, f"CNNKIT_OFFLINE={os.environ.get('CNNKIT_OFFLINE')}") from None
    except ValueError as e:  # a weights file of another architecture or with a top
        raise ModelError(f"keras:{name} cannot load {keras_weights}: {str(e).splitlines()[0][:200]}") from e
    except Exception as e:  # get_file raises a bare Exception when a download fails
        if "URL fetch failure" not in str(e):
            raise
        url = re.search(r"https?://\S+?\.h5", str(e))
        reason = str(e).splitlines()[0].rpartition(" -- ")[2][:160]  # "URL fetch failure on URL: code -- why"
        raise _offline_error(name, url.group(0) if url else None, reason) from e
    mean, std, bgr = PREPROCESS[mode]
    backbone = KerasBackbone(model, name=name, in_chans=in_chans, bgr=bgr and in_chans == 3)
    where = source or f"Keras's cache ({weights_dir()})"
    loaded = f"keras:{name} ImageNet weights from {where}" if weights else \
        f"keras:{name} with random weights (no --weights given)"
    adapted = None
    if in_chans == 1:
        adapted = ("grey images repeated to the 3 channels the first convolution takes "
                   "(the same as summing its filters over colour)")
    return backbone, PretrainedInfo(loaded, mean=tuple(mean), std=tuple(std), min_size=(smallest, smallest),
                                    recommended_size=(size, size), adapted_channels=adapted)
