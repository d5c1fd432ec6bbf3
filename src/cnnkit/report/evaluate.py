"""`cnnkit evaluate`: a bundle's test metrics on a test split, as its task defines them (tasks/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.dataset import ImageArrays, load_dataset
from ..data.loader import TensorLoader, make_loader
from ..device import pick_device
from ..errors import CnnkitError
from ..fileio import safe_name, write_json
from ..models.bundle import BundleMeta, find_bundle, is_bundle_path
from ..models.resolve import load_model
from ..tasks.base import get_task


def evaluate_bundle(path: str | Path, data: str | None = None, *, out: str | Path | None = None,
                    device: str = "auto", batch_size: int = 512) -> dict[str, Any]:
    """The task's test metrics and pictures (classification: accuracy, per-class precision/recall/F1,
    a confusion matrix PNG) on a test split; also written to `out`/evaluation.json."""
    dev = pick_device(device)
    model, meta = load_model(path, device=dev)  # a run, a bundle, or a pretrained model's name
    name = data or meta.summary.get("dataset")
    if not name:
        raise CnnkitError("the bundle does not say which dataset it was trained on; pass --data NAME")
    # Variable-size image datasets are decoded straight to the model's input size.
    splits = load_dataset(name, image_size=tuple(meta.input_shape[1:]))
    test = _fit_split(splits.test, meta) if splits.path == "tensor" else splits.test
    loader = make_loader(test, batch_size=batch_size, mean=tuple(meta.mean), std=tuple(meta.std), device=dev)
    outputs, targets = _predict_all(model, loader)
    class_names = meta.class_names
    if list(splits.class_names) != list(class_names) and set(splits.class_names) <= set(class_names):
        # Photos labelled with some of the model's classes (a folder `tabby/`, `espresso/` for an ImageNet
        # model): scored among those classes only, the dataset's order kept.
        columns = [list(class_names).index(name) for name in splits.class_names]
        outputs, class_names = outputs[:, columns], list(splits.class_names)
    if list(splits.class_names) != list(class_names):
        raise CnnkitError(f"the model's classes ({', '.join(class_names[:4])}, ...) are not those of {name} "
                          f"({', '.join(splits.class_names[:4])}, ...); evaluate on the dataset it was "
                          "trained on, or fine-tune it first (`cnnkit finetune`)")
    if out:
        out_dir = Path(out)
    elif is_bundle_path(path, found=False):
        out_dir = find_bundle(path).parent / "evaluate"
    else:
        out_dir = Path("evaluate") / safe_name(str(path))
    result = get_task(meta.task).evaluate_report(outputs, targets, class_names, dataset=name, out_dir=out_dir)
    write_json(out_dir / "evaluation.json", result)
    return result


def _fit_split(split: ImageArrays, meta: BundleMeta) -> ImageArrays:
    """Convert a split's images to the channels and size the model was trained on."""
    images = split.images
    c, h, w = meta.input_shape
    if images.shape[1] != c:
        images = images.float().mean(1, keepdim=True).round().to(torch.uint8) if c == 1 else images.expand(-1, c, -1, -1)
    if tuple(images.shape[2:]) != (h, w):
        images = torch.nn.functional.interpolate(images.float(), size=(h, w), mode="bilinear",
                                                 antialias=True).round().clamp(0, 255).to(torch.uint8)
    return ImageArrays(images.contiguous(), split.labels)


@torch.no_grad()
def _predict_all(model: nn.Module, loader: TensorLoader) -> tuple[torch.Tensor, torch.Tensor]:
    outputs, labels = [], []
    for x, y in loader:
        outputs.append(model(x).float().cpu())
        labels.append(y.cpu())
    return torch.cat(outputs), torch.cat(labels)


def evaluate_foreign(path: str | Path, data: str | None, *, out: str | Path | None = None, batch_size: int = 512,
                     preprocessing: dict[str, Any] | None = None) -> dict[str, Any]:
    """`evaluate_bundle` for a foreign model file run in OpenCV DNN (deploy/foreign.py): every test
    image goes through the model's own preprocessing (cv2.dnn.blobFromImages)."""
    import numpy as np

    from ..data.arrays import FileList
    from ..deploy.runtimes import open_runtime

    if not data:
        raise CnnkitError(f"{Path(path).name} is not a cnnkit model, so it does not know its dataset; "
                          "pass --data NAME")
    rt = open_runtime(path, "opencv", preprocessing=preprocessing)
    c, h, w = rt.info.input_shape
    splits = load_dataset(data, image_size=(h, w))
    test = splits.test
    labels_given = rt.preprocessing.labels is not None
    class_names = rt.info.class_names if labels_given else list(splits.class_names)
    if len(rt.info.class_names) != len(splits.class_names) or (labels_given and class_names != list(splits.class_names)):
        raise CnnkitError(f"the model's {len(rt.info.class_names)} classes ({', '.join(rt.info.class_names[:4])}, "
                          f"...) are not the {len(splits.class_names)} of {data} "
                          f"({', '.join(splits.class_names[:4])}, ...); evaluate on the dataset it was trained on")
    outputs = []
    if isinstance(test, FileList):
        for start in range(0, len(test.paths), batch_size):
            outputs.append(rt.run(rt.batch([rt.read_image(p) for p in test.paths[start:start + batch_size]])))
    else:
        images = test.images
        if images.shape[1] != c:
            images = images.float().mean(1, keepdim=True).round().to(torch.uint8) if c == 1 else images.expand(-1, 3, -1, -1)
        array = images.permute(0, 2, 3, 1).contiguous().numpy()
        for start in range(0, len(array), batch_size):
            chunk = [a[:, :, 0] if c == 1 else a for a in array[start:start + batch_size]]
            outputs.append(rt.run(rt.batch(chunk)))
    out_dir = Path(out) if out else Path(path).expanduser().parent / "evaluate"
    result = get_task("classification").evaluate_report(torch.from_numpy(np.concatenate(outputs)), test.labels.long(),
                                                        class_names, dataset=data, out_dir=out_dir)
    write_json(out_dir / "evaluation.json", result)
    return result
