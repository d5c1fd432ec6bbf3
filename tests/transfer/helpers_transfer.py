"""Small shared pieces for the transfer tests: synthetic data and weight files in the libraries' places."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from cnnkit.data.dataset import DataSplits, ImageArrays


def tiny_splits(n: int = 16, shape=(1, 32, 32), classes: int = 2, seed: int = 0) -> DataSplits:
    """Learnable synthetic data: class k has a bright square in corner k."""
    g = torch.Generator().manual_seed(seed)

    def split(count: int) -> ImageArrays:
        labels = torch.arange(count) % classes
        images = torch.randint(0, 60, (count, *shape), generator=g, dtype=torch.uint8)
        h, w = shape[1] // 2, shape[2] // 2
        for i, k in enumerate(labels.tolist()):
            r, c = (k // 2) * h, (k % 2) * w
            images[i, :, r:r + h, c:c + w] = 220
        return ImageArrays(images, labels)

    return DataSplits(name="tiny", train=split(n), val=split(8), test=split(8),
                      class_names=[f"c{k}" for k in range(classes)], mean=(0.3,) * shape[0],
                      std=(0.3,) * shape[0])


def torchvision_checkpoint(name: str) -> tuple[Path, dict[str, torch.Tensor]]:
    """A randomly initialised torchvision model saved where torch.hub looks for its IMAGENET weights."""
    import torchvision.models as tvm

    from cnnkit.models.sources_torchvision import cache_path, weights_enum

    torch.manual_seed(1)
    state = tvm.get_model(name, weights=None).state_dict()
    path = cache_path(weights_enum(name, "imagenet").url)
    assert str(path).startswith(os.environ["TORCH_HOME"])
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path, state


def timm_hf_cache(name: str) -> tuple[Path, dict[str, torch.Tensor]]:
    """A randomly initialised timm model saved in the Hugging Face hub cache layout under $HF_HOME."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(2)
    model = timm.create_model(name, pretrained=False)
    hub_id = model.pretrained_cfg["hf_hub_id"]
    folder = Path(os.environ["HF_HOME"]) / "hub" / f"models--{hub_id.replace('/', '--')}"
    (folder / "snapshots" / "local").mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text("local")
    path = folder / "snapshots" / "local" / "model.safetensors"
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(path))
    return path, state
