"""Hugging Face transformers image-classification CNNs as a model source: `hf:microsoft/resnet-50`.

Weights load through transformers' own `from_pretrained` (the hub cache under
`$HF_HOME/hub`, `HF_HUB_OFFLINE` honoured when the call is made), from a folder
written by `save_pretrained`, or from a `.safetensors` file next to (or with a
cached) `config.json`. Without weights the architecture is built from its
config, which must then be cached: that is how `cnnkit.load` rebuilds a
fine-tuned model from its bundle, offline.

`HFBackbone` wraps the `*ForImageClassification` model so that it looks like
the other backbones: forward(images) -> one pooled feature vector per image,
and implements adapt.BackboneAdapter: `cnnkit_strip_classifier()` and
`cnnkit_groups()` (stem, stages by resolution, top) for the transfer strategies. transformers is imported only here, on use:
it takes seconds.
"""

from __future__ import annotations

import contextlib
import fnmatch
import importlib.util
import json
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelError
from ..nn.spec import pair
from .adapt import BackboneAdapter, adapt_in_channels, first_conv
from .records import PretrainedInfo
from .registry import WEIGHTS_HERE
from .sources_timm import hf_cache_hint, hub_cache, hub_cached

PREFIX = "hf"
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
# Every family here downsamples 32 times; ConvNeXt's strided 2x2 convolutions fail on a 1x1 map, so
# smaller images are resized up to this (on the batch, inside the model).
MIN_SIZE = (32, 32)
# The transformers model types whose base model is a CNN ending in a pooled feature vector.
CNN_TYPES = {"resnet", "convnext", "convnextv2", "mobilenet_v1", "mobilenet_v2", "efficientnet", "regnet",
             "bit"}

# transformers cannot list the hub offline: well-known ImageNet checkpoints, per family.
CHECKPOINTS = {
    "microsoft/resnet-18": "ResNet-18", "microsoft/resnet-26": "ResNet-26", "microsoft/resnet-34": "ResNet-34",
    "microsoft/resnet-50": "ResNet-50", "microsoft/resnet-101": "ResNet-101",
    "microsoft/resnet-152": "ResNet-152",
    "facebook/convnext-tiny-224": "ConvNeXt-T", "facebook/convnext-small-224": "ConvNeXt-S",
    "facebook/convnext-base-224": "ConvNeXt-B", "facebook/convnext-large-224": "ConvNeXt-L",
    "facebook/convnextv2-atto-1k-224": "ConvNeXt V2-Atto", "facebook/convnextv2-tiny-1k-224": "ConvNeXt V2-T",
    "google/mobilenet_v1_1.0_224": "MobileNetV1 1.0", "google/mobilenet_v2_1.0_224": "MobileNetV2 1.0",
    "google/mobilenet_v2_1.4_224": "MobileNetV2 1.4", "google/mobilenet_v2_0.35_96": "MobileNetV2 0.35, 96x96",
    **{f"google/efficientnet-b{i}": f"EfficientNet-B{i}" for i in range(8)},
    "facebook/regnet-x-002": "RegNetX-200MF", "facebook/regnet-y-040": "RegNetY-4GF",
    "google/bit-50": "BiT-M R50x1",
}


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ModelError("hf: models need Hugging Face transformers: pip install 'cnnkit[hf]'") from None
    return transformers


@contextlib.contextmanager
def _quiet(transformers):
    """No progress bars or "newly initialised weights" notes while loading: cnnkit says what it loaded."""
    logging = transformers.utils.logging
    verbosity, bars = logging.get_verbosity(), logging.is_progress_bar_enabled()
    logging.set_verbosity_error()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if bars:
            logging.enable_progress_bar()


def lister(pattern: str) -> list[tuple[str, str, bool]]:
    if importlib.util.find_spec("transformers") is None:  # (importing it only to list would cost 0.3 s)
        return []
    rows = [(f"{PREFIX}:{hub_id}", f"transformers {what}, ImageNet-1k weights (Hugging Face hub)"
             + (f" {WEIGHTS_HERE}" if hub_cached(hub_id) else ""), True) for hub_id, what in CHECKPOINTS.items()]
    return [r for r in rows if fnmatch.fnmatch(r[0], pattern) or fnmatch.fnmatch(r[0][len(PREFIX) + 1:], pattern)]


def offline() -> bool:
    """HF_HUB_OFFLINE as it is now (huggingface_hub reads it only once, at import)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


# Some checkpoints (google/bit-50, facebook/regnet-x-002) have only pytorch_model.bin on main; transformers
# loads it with torch.load(weights_only=True), so nothing in it is executed.
WEIGHT_FILES = ("config.json, model.safetensors (or pytorch_model.bin where the repository has no safetensors) "
                "and preprocessor_config.json")


def cache_hint(hub_id: str) -> str:
    return hf_cache_hint(hub_id, WEIGHT_FILES)


# --------------------------------------------------------------- the wrapper

class HFBackbone(BackboneAdapter, nn.Module):
    """A transformers `*ForImageClassification` CNN as a backbone: images -> pooled features (N, F)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    @property
    def base(self) -> nn.Module:
        return self.model.base_model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(pixel_values=x, return_dict=True).pooler_output.flatten(1)

    def cnnkit_strip_classifier(self) -> tuple[int, str]:
        """Drop the HF classifier (forward never used it); (number of features, its name)."""
        linears = [m for m in self.model.classifier.modules() if isinstance(m, nn.Linear)]
        if linears:
            num_features = linears[-1].in_features
        else:  # num_labels=0: the classifier is already an Identity; measure the features
            with torch.no_grad():
                was = self.training
                num_features = self.eval()(torch.zeros(1, self.cnnkit_first_conv()[1].in_channels, 64, 64)).shape[1]
                self.train(was)
        self.model.classifier = nn.Identity()
        return int(num_features), "classifier"

    def cnnkit_groups(self) -> list[tuple[str, list[str]]]:
        """stem, stage1..N, top (head convolution or final norm), input to output; parameter names."""
        blocks, stages = _body(self.base)
        module_names = {id(m): n for n, m in self.named_modules()}
        owner = {}  # parameter name -> index of the block it belongs to
        for i, block in enumerate(blocks):
            prefix = module_names[id(block)]
            for n, _ in block.named_parameters():
                owner[f"{prefix}.{n}"] = i
        if stages:
            stage_of = list(range(len(blocks)))
        else:  # MobileNet/EfficientNet: a flat list of blocks, a new stage wherever the resolution halves
            stage_of, current = [], 0
            for i, block in enumerate(blocks):
                if i and any(isinstance(m, nn.Conv2d) and max(pair(m.stride)) > 1 for m in block.modules()):
                    current += 1
                stage_of.append(current)
        groups: dict[str, list[str]] = {"stem": []}
        for name, _ in self.named_parameters():
            if name in owner:
                groups.setdefault(f"stage{stage_of[owner[name]] + 1}", []).append(name)
            elif len(groups) == 1:
                groups["stem"].append(name)
            else:
                groups.setdefault("top", []).append(name)
        return [(label, names) for label, names in groups.items() if names]


def _body(base: nn.Module) -> tuple[list[nn.Module], bool]:
    """The base model's blocks (the first ModuleList of more than one) and whether they are whole stages."""
    for name, module in base.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) > 1:
            return list(module), name.rsplit(".", 1)[-1] == "stages"
    return [m for m in base.children() if any(True for _ in m.parameters())], True


def _set_in_channels(backbone: HFBackbone, in_chans: int) -> str | None:
    """First conv for `in_chans` channels (adapt_in_channels), and the embedders' own `num_channels` check
    told so."""
    old = first_conv(backbone)[1].in_channels
    adapted = adapt_in_channels(backbone, in_chans)
    if adapted:
        backbone.model.config.num_channels = in_chans
        for module in backbone.modules():  # ResNet/ConvNeXt/RegNet embeddings refuse other channel counts
            if type(module).__module__.startswith("transformers") and getattr(module, "num_channels", None) == old:
                module.num_channels = in_chans
    return adapted


# --------------------------------------------------------------- loading

def _load_config(transformers, name: str, folder: Path | None):
    """The model's config: from `folder` when given, else the hub cache (or the hub when online)."""
    try:
        if folder is not None:
            return transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
        return transformers.AutoConfig.from_pretrained(name, cache_dir=str(hub_cache()), local_files_only=offline())
    except (OSError, ValueError, KeyError) as e:
        if Path(name).expanduser().is_dir() or folder is not None:
            raise ModelError(f"{folder or name} holds no usable config.json ({_why(e)}); give a folder written "
                             "by save_pretrained") from e
        raise ModelError(f"hf:{name}: its config.json is not cached and could not be downloaded "
                         f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '')}). {cache_hint(name)}; "
                         f"or pass --weights PATH (a save_pretrained folder) ({_why(e)})") from e


def _why(e: Exception) -> str:
    return f"{type(e).__name__}: {str(e).splitlines()[0][:200]}" if str(e) else type(e).__name__


def _preprocessing(name: str, folder: Path | None, config) -> dict:
    """mean/std and the trained size from preprocessor_config.json (ImageNet's when there is none)."""
    pre: dict = {}
    try:
        if folder is not None:
            file = folder / "preprocessor_config.json"
        else:
            from huggingface_hub import hf_hub_download

            file = Path(hf_hub_download(name, "preprocessor_config.json", cache_dir=str(hub_cache()),
                                        local_files_only=offline()))
        pre = json.loads(file.read_text())
    except (OSError, ValueError, ImportError):  # not there: the ImageNet statistics these CNNs are trained with
        pass
    size = pre.get("crop_size") or pre.get("size") or getattr(config, "image_size", None) or 224
    if isinstance(size, dict):
        size = [size["height"], size["width"]] if "height" in size else [size.get("shortest_edge", 224)] * 2
    elif isinstance(size, int):
        size = [size, size]
    return {"mean": tuple(pre.get("image_mean", IMAGENET_MEAN)), "std": tuple(pre.get("image_std", IMAGENET_STD)),
            "recommended_size": tuple(int(s) for s in size)}


def _load_file(model: nn.Module, path: Path) -> list[str]:
    """Tensors of a .safetensors (or weights-only .pth) file into the model (HF names, with or without
    the base prefix)."""
    from .pretrained import load_partial, load_state_file

    state = load_state_file(path)
    own = model.state_dict()
    prefix = f"{model.base_model_prefix}."
    if not any(k in own for k in state) and any(prefix + k in own for k in state):
        state = {prefix + k: v for k, v in state.items()}  # saved from the base model alone
    return load_partial(model, state, str(path))


def build(name: str, *, in_chans: int, weights: str | None = None) -> tuple[nn.Module, PretrainedInfo]:
    """`hf:ORG/NAME` (or hf:FOLDER) as an HFBackbone, first conv for `in_chans`; (backbone, info)."""
    transformers = _transformers()
    with _quiet(transformers):
        return _build(transformers, name, in_chans=in_chans, weights=weights)


def _build(transformers, name: str, *, in_chans: int, weights: str | None) -> tuple[nn.Module, PretrainedInfo]:
    local = Path(name).expanduser()
    folder = local if local.is_dir() else None  # hf:./saved_pretrained_folder
    path = None
    if weights and weights not in ("imagenet", "default", "pretrained"):
        path = Path(weights).expanduser()
        if not path.exists():
            raise ModelError(f"--weights {weights}: no such file or folder; give imagenet, a folder written by "
                             "save_pretrained or a .safetensors file")
    config_folder = path if path and path.is_dir() else folder
    if path and path.is_file() and (path.parent / "config.json").is_file():
        config_folder = path.parent
    config = _load_config(transformers, name, config_folder)
    if config.model_type not in CNN_TYPES:
        raise ModelError(f"hf:{name} is a {config.model_type!r} model; the hf: source takes the image-"
                         f"classification CNNs ({', '.join(sorted(CNN_TYPES))}); timm has the others")
    auto = transformers.AutoModelForImageClassification
    if path and path.is_dir():
        model = auto.from_pretrained(str(path), config=config, local_files_only=True)
        loaded = f"hf:{name} weights from {path}"
    elif path:
        model = auto.from_config(config)
        skipped = _load_file(model, path)
        loaded = f"hf:{name} weights from {path}" + (f" (left out: {', '.join(skipped[:4])})" if skipped else "")
    elif weights:
        source = str(folder) if folder else name
        try:
            model = auto.from_pretrained(source, config=config, cache_dir=str(hub_cache()),
                                         local_files_only=offline() or folder is not None)
        except (OSError, ValueError) as e:  # LocalEntryNotFoundError is an OSError
            raise ModelError(f"the pretrained weights of hf:{name} are not cached and could not be downloaded "
                             f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '')}). {cache_hint(name)}; "
                             f"or pass --weights PATH ({_why(e)})") from e
        loaded = f"hf:{name} pretrained weights from " + (str(folder) if folder else
                                                          f"the Hugging Face cache ({name})")
    else:
        model = auto.from_config(config)
        loaded = f"hf:{name} with random weights (--weights none)"
    backbone = HFBackbone(model.float())
    # No weights, no normalisation or training size of theirs to follow; the smallest input still holds.
    preprocessing = _preprocessing(name, config_folder, config) if weights else {}
    adapted = _set_in_channels(backbone, in_chans)
    # The config came with --weights: a bundle must rebuild from that folder (hf:FOLDER), not from `name`.
    rebuild_name = str(config_folder.resolve()) if config_folder is not None and config_folder != folder else None
    return backbone, PretrainedInfo(loaded, min_size=MIN_SIZE, adapted_channels=adapted,
                                    rebuild_name=rebuild_name, **preprocessing)
