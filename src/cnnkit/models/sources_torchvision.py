"""TorchVision as a model source: `tv:resnet18`, every classification model with its weight enums.

Weights load through torchvision's own mechanism: the weights enum names the URL,
`torch.hub` caches the file in `$TORCH_HOME/hub/checkpoints/<file name of the URL>`
and checks the sha256 prefix in that name. With no network and no cached file
the error names the URL and the exact path to put the file in.
"""

from __future__ import annotations

import fnmatch
import os
import urllib.error
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.sources import offline
from ..errors import ModelError
from .records import PretrainedInfo
from .registry import WEIGHTS_HERE

PREFIX = "tv"
IMAGENET = ("imagenet", "default", "pretrained", "DEFAULT")


def _names() -> list[str]:
    import torchvision.models as tvm

    return tvm.list_models(module=tvm)  # classification models only (not detection/segmentation/video)


def hash_check() -> bool:
    """sha256 check of cached torchvision files; CNNKIT_WEIGHTS_CHECK_HASH=0 turns it off (local test files)."""
    return os.environ.get("CNNKIT_WEIGHTS_CHECK_HASH", "1") not in ("0", "false", "no")


def lister(pattern: str) -> list[tuple[str, str, bool]]:
    from torchvision.models import get_model_weights

    rows = []
    for name in _names():
        full = f"{PREFIX}:{name}"
        if not (fnmatch.fnmatch(full, pattern) or fnmatch.fnmatch(name, pattern)):
            continue
        weights = list(get_model_weights(name))
        here = [w.name for w in weights if cache_path(w.url).is_file()]
        rows.append((full, f"torchvision; weights: {', '.join(w.name for w in weights) or 'none'}"
                     + (f" {WEIGHTS_HERE}: {', '.join(here)}" if here else ""), bool(weights)))
    return rows


def weights_enum(name: str, which: str):
    """The torchvision weights enum member for `which` (imagenet = the DEFAULT one, or a member name)."""
    from torchvision.models import get_model_weights

    enum = get_model_weights(name)
    members = [w.name for w in enum]
    key = "DEFAULT" if which in IMAGENET else which
    try:
        return enum[key]
    except KeyError:
        raise ModelError(f"tv:{name} has no weights {which!r}; choose imagenet or one of {members}") from None


def cache_path(url: str) -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)


def verify_hash_prefix(path: Path) -> None:
    """torchvision file names carry the first hex digits of the file's sha256 (resnet18-f37072fd.pth)."""
    import hashlib
    import re

    match = re.search(r"-([a-f0-9]{6,})\.", path.name)
    if not match:
        return
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    if not h.hexdigest().startswith(match.group(1)):
        raise ModelError(f"{path} does not match the sha256 prefix {match.group(1)} in its name (it is "
                         f"{h.hexdigest()[:len(match.group(1))]}): a damaged or different file. Delete it and "
                         "download it again, or pass it explicitly with --weights PATH")


def load_weights(name: str, which: str) -> tuple[dict[str, torch.Tensor], Any]:
    """State dict of torchvision weights `which` for model `name`, through torch.hub's cache."""
    w = weights_enum(name, which)
    path = cache_path(w.url)
    missing = (f"the {w} weights of tv:{name} are not cached and cannot be downloaded here. "
               f"Download {w.url} and put it at {path} (TORCH_HOME={os.environ.get('TORCH_HOME', '~/.cache/torch')}), "
               f"or pass --weights PATH to a .pth/.safetensors file")
    if not path.is_file() and offline():
        raise ModelError(missing + " (CNNKIT_OFFLINE is set)")
    if path.is_file() and hash_check():
        verify_hash_prefix(path)  # torch.hub checks only while downloading; a cached file is checked here
    try:
        state = torch.hub.load_state_dict_from_url(w.url, progress=False, check_hash=hash_check(),
                                                   weights_only=True, map_location="cpu")
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        raise ModelError(f"{missing} ({e})") from e
    except RuntimeError as e:
        if "hash" in str(e).lower():
            raise ModelError(f"{path} does not match the sha256 prefix in its name ({e}); delete it and "
                             "download it again") from e
        raise ModelError(f"{path} cannot be loaded: {e}") from e
    return state, w


def build(name: str, *, weights: str | None = None) -> tuple[nn.Module, PretrainedInfo]:
    """A torchvision model, with pretrained weights if asked; (model, what its weights enum says)."""
    import torchvision.models as tvm

    if name not in _names():
        import difflib

        close = difflib.get_close_matches(name, _names(), n=3)
        raise ModelError(f"torchvision has no classification model {name!r}"
                         + (f"; did you mean {', '.join(close)}?" if close else "; `cnnkit models --source tv` lists them"))
    kwargs = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    model = tvm.get_model(name, weights=None, **kwargs)
    if not weights:
        return model, PretrainedInfo(f"tv:{name} with random weights (--weights none)")
    state, w = load_weights(name, weights)
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.") and not k.startswith("aux")}
    model.load_state_dict(state)
    t = w.transforms()
    crop = tuple(t.crop_size) * 2 if len(t.crop_size) == 1 else tuple(t.crop_size)
    resize = getattr(t, "resize_size", None)
    return model, PretrainedInfo(f"tv:{name} ImageNet weights {w} from {cache_path(w.url)}", mean=tuple(t.mean),
                                 std=tuple(t.std), min_size=tuple(w.meta.get("min_size", (1, 1))),
                                 recommended_size=crop, url=w.url,
                                 crop_pct=min(crop) / min(resize) if resize else 1.0)
