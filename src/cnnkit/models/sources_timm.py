"""timm as a model source: `timm:resnet18.a1_in1k`, `timm:hf-hub:timm/...` or `hf-hub:timm/...`.

Weights load through timm's own mechanism (the Hugging Face hub cache under
`$HF_HOME/hub`, honouring `HF_HUB_OFFLINE`), or from a local file through
`pretrained_cfg_overlay=dict(file=...)`. timm also adapts the first convolution
when the data has other than 3 channels and drops the old classifier.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from torch import nn

from ..errors import ModelError

PREFIX = "timm"


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
    inner = pattern.removeprefix(f"{PREFIX}:")
    pretrained = set(timm.list_pretrained(inner))
    rows = [(f"{PREFIX}:{n}", "timm pretrained weights (Hugging Face hub)", True) for n in sorted(pretrained)]
    rows += [(f"{PREFIX}:{n}", "timm architecture", False) for n in timm.list_models(inner)
             if not any(p.startswith(n + ".") for p in pretrained)]
    return [r for r in rows if fnmatch.fnmatch(r[0], pattern) or fnmatch.fnmatch(r[0][len(PREFIX) + 1:], pattern)]


def hub_cache() -> Path:
    """The Hugging Face hub cache, read now (huggingface_hub reads HF_HOME only once, at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"


def hf_cache_hint(hub_id: str) -> str:
    folder = hub_cache() / f"models--{hub_id.replace('/', '--')}"
    return (f"https://huggingface.co/{hub_id}/resolve/main/model.safetensors; put it at "
            f"{folder}/snapshots/<revision>/model.safetensors and write <revision> into {folder}/refs/main "
            f"(`huggingface-cli download {hub_id}` does both)")


def build(name: str, *, in_chans: int, weights: str | None = None) -> tuple[nn.Module, dict]:
    """A timm model without classifier (num_classes=0), first conv for `in_chans`; (model, info)."""
    timm = _timm()
    arch = name.removeprefix("hf-hub:")
    if not name.startswith("hf-hub:") and not timm.is_model(arch.split(".")[0]):
        import difflib

        close = difflib.get_close_matches(arch, timm.list_models(), n=3)
        raise ModelError(f"timm has no model {arch!r}" + (f"; did you mean {', '.join(close)}?" if close else ""))
    kwargs: dict = {"num_classes": 0, "in_chans": in_chans}
    source = None
    if weights and weights not in ("imagenet", "default", "pretrained"):
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ModelError(f"--weights {weights}: no such file; give imagenet or a .safetensors/.pth file")
        kwargs["pretrained_cfg_overlay"] = {"file": str(path)}
        source = str(path)
    elif weights:
        kwargs["cache_dir"] = str(hub_cache())
    try:
        model = timm.create_model(name, pretrained=bool(weights), **kwargs)
    except (OSError, RuntimeError, ValueError) as e:  # LocalEntryNotFoundError is an OSError
        cfg = timm.create_model(name, pretrained=False, num_classes=0).pretrained_cfg if not name.startswith(
            "hf-hub:") else {"hf_hub_id": arch}
        hub_id = cfg.get("hf_hub_id")
        hint = hf_cache_hint(hub_id) if hub_id else cfg.get("url", "")
        raise ModelError(f"the pretrained weights of timm:{name} are not cached and cannot be downloaded here "
                         f"(HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '')}). Download {hint}; "
                         f"or pass --weights PATH ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e
    cfg = model.pretrained_cfg
    info: dict = {"loaded": f"timm:{name} with random weights (no --weights given)"}
    if weights:
        where = source or f"the Hugging Face cache ({cfg.get('hf_hub_id')})"
        info = {"loaded": f"timm:{name} pretrained weights from {where}",
                "mean": list(cfg.get("mean", (0.485, 0.456, 0.406))), "std": list(cfg.get("std", (0.229, 0.224, 0.225))),
                "min_size": [1, 1] if not cfg.get("fixed_input_size") else list(cfg["input_size"][1:]),
                "recommended_size": list(cfg.get("input_size", (3, 224, 224))[1:])}
        if cfg.get("fixed_input_size"):
            info["min_size"] = list(cfg["input_size"][1:])
    return model, info
