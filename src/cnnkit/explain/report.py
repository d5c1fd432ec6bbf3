"""`cnnkit explain RUN IMAGE`: everything a person needs to see inside one prediction.

Writes into one folder: the input as the model sees it, each conv layer's
feature maps, the first layer's filters, a Grad-CAM heat map, and explain.md
with per-layer shapes and one value of the first convolution worked by hand
(and checked against the model's own output); explain.json holds the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.dataset import ImageArrays
from ..data.images import load_image
from ..data.loader import TensorLoader
from ..errors import ConfigError
from ..fileio import safe_name, write_json, write_text
from ..models.bundle import BundleMeta, find_bundle, is_bundle_path
from ..models.resolve import load_model
from .gradcam import GradCam, grad_cam
from .handwork import WorkedValue, conv_params, work_conv_value, worked_markdown
from .pictures import Grid, save_grid, save_heatmap, save_input
from .trace import LayerRecord, capture, conv_layers, layer_shapes


@dataclass
class Explanation:
    out_dir: Path
    predicted: int
    probabilities: list[float]
    class_names: list[str]
    shapes: list[LayerRecord]
    feature_maps: dict[str, Grid] = field(default_factory=dict)
    filters: Grid | None = None
    gradcam: GradCam | None = None
    worked: WorkedValue | None = None
    worked_actual: float = 0.0
    worked_next: WorkedValue | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def worked_difference(self) -> float:
        return abs(self.worked.value - self.worked_actual) if self.worked else float("nan")


def normalize(images: torch.Tensor, meta: BundleMeta) -> torch.Tensor:
    """uint8 N x C x H x W -> the float input of training (the TensorLoader's own arithmetic)."""
    loader = TensorLoader(ImageArrays(images, torch.zeros(len(images), dtype=torch.long)),
                          batch_size=len(images), mean=tuple(meta.mean), std=tuple(meta.std),
                          device=torch.device("cpu"))
    x, _ = next(iter(loader))
    return x


def resolve_class(spec: str | int | None, class_names: list[str]) -> int | None:
    """A class given by index or by name (case-insensitive); None stays None (= top class)."""
    if spec is None:
        return None
    text = str(spec).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(class_names):
            raise ConfigError(f"class {index} is out of range; the model has {len(class_names)} classes (0..{len(class_names) - 1})")
        return index
    lowered = [c.lower() for c in class_names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    raise ConfigError(f"unknown class {text!r}; the model's classes are: {', '.join(class_names)}")


def pick_position(output: torch.Tensor) -> tuple[int, int, int]:
    """The output value to work by hand: filter 0, at the strongest response of that filter
    (so the window sits on the object, not on empty background)."""
    plane = output[0, 0]
    flat = int(plane.abs().argmax())
    return 0, flat // plane.shape[1], flat % plane.shape[1]


def explain_model(model_path: str | Path, image_path: str | Path, *, class_: str | int | None = None,
                  out: str | Path | None = None, max_maps: int = 64) -> Explanation:
    """Explain one prediction of a run, a bundle or a pretrained model's name (`efficientnet-lite0`);
    writes PNGs and explain.md into `out` (default: explain/ beside the bundle, or ./explain/NAME/)."""
    model, meta = load_model(model_path)
    if is_bundle_path(model_path, found=False):
        default_out = find_bundle(model_path).parent / "explain" / Path(image_path).stem
    else:
        default_out = Path("explain") / safe_name(str(model_path)) / Path(image_path).stem
    return explain(model, meta, image_path, class_=class_, out=Path(out) if out else default_out,
                   max_maps=max_maps)


def explain(model: nn.Module, meta: BundleMeta, image_path: str | Path, *, class_: str | int | None = None,
            out: Path, max_maps: int = 64) -> Explanation:
    model.eval()
    c, h, w = meta.input_shape
    raw = load_image(image_path, c, (h, w), crop_pct=meta.crop_pct)
    x = normalize(raw[None], meta)
    out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        probabilities = model(x).softmax(1)[0]
    result = Explanation(out, int(probabilities.argmax()), [float(p) for p in probabilities],
                         list(meta.class_names), layer_shapes(model, x))
    result.files["input"] = save_input(raw.numpy(), out / "input.png")

    convs = conv_layers(model)
    seen = capture(model, x, convs)
    for index, (name, _) in enumerate(convs):
        maps = seen[name][1][0]
        result.feature_maps[name] = save_grid([m.numpy() for m in maps[:max_maps]],
                                              out / f"feature_maps_{index + 1:02d}_{name.replace('.', '_')}.png")

    first_name, first = convs[0]
    weight = first.weight.detach()
    if weight.shape[1] == 3:
        panels = [f.numpy() for f in weight]
    else:  # one grey panel per filter: the mean over its input channels
        panels = [f.mean(0).numpy() for f in weight]
    result.filters = save_grid(panels, out / f"filters_{first_name.replace('.', '_')}.png")

    cam = grad_cam(model, x, resolve_class(class_, meta.class_names))
    result.gradcam = cam
    result.files["gradcam"] = save_heatmap(raw.numpy(), cam.heatmap.numpy(), out / "gradcam.png")

    conv_in, conv_out = seen[first_name]
    f, i, j = pick_position(conv_out)
    params = conv_params(first)
    bias = first.bias.detach().numpy() if first.bias is not None else None
    result.worked = work_conv_value(conv_in[0].numpy(), weight.numpy(), bias, f, i, j, **params)
    result.worked_actual = float(conv_out[0, f, i, j])
    if j + 1 < conv_out.shape[3]:
        result.worked_next = work_conv_value(conv_in[0].numpy(), weight.numpy(), bias, f, i, j + 1, **params)
    input_is_image = conv_in.shape == x.shape and torch.equal(conv_in, x)
    md = _markdown(result, meta, first_name, params, raw.numpy() if input_is_image else None,
                   conv_out, Path(image_path))
    write_text(out / "explain.md", md)
    result.files["explain.md"] = out / "explain.md"
    write_json(out / "explain.json", _record(result, Path(image_path)))
    result.files["explain.json"] = out / "explain.json"
    return result


def _record(r: Explanation, image: Path) -> dict:
    """The same facts as explain.md, machine-readable (the CNN Explainer idea: dump it, draw it elsewhere)."""
    cam, w = r.gradcam, r.worked

    def grid(g: Grid) -> dict:
        return {"file": g.path.name, "panels": g.panels, "rows": g.rows, "cols": g.cols}

    return {
        "image": str(image),
        "predicted": r.class_names[r.predicted],
        "probabilities": {n: round(p, 6) for n, p in zip(r.class_names, r.probabilities, strict=True)},
        "layers": [{"name": s.name, "type": s.kind, "output_shape": list(s.output_shape),
                    "parameters": s.parameters} for s in r.shapes],
        "feature_maps": {name: grid(g) for name, g in r.feature_maps.items()},
        "filters": grid(r.filters),
        "gradcam": {"layer": cam.layer, "class": r.class_names[cam.class_index], "logit": round(cam.score, 6),
                    "map": [[round(float(v), 6) for v in row] for row in cam.cam]},
        "worked": {"filter": w.filter, "row": w.row, "col": w.col, "by_hand": w.value, "model": r.worked_actual,
                   "bias": w.bias, "terms": [[t.channel, t.row, t.col, t.pixel, t.weight] for t in w.terms]},
    }


def _markdown(r: Explanation, meta: BundleMeta, first_name: str, params: dict, raw: np.ndarray | None,
              conv_out: torch.Tensor, image: Path) -> str:
    names = r.class_names
    top = sorted(range(len(names)), key=lambda k: -r.probabilities[k])[:3]
    cam = r.gradcam
    lines = [
        f"# Inside the model: {image.name}",
        "",
        f"Prediction: **{names[r.predicted]}** ({r.probabilities[r.predicted]:.3f}); then "
        + ", ".join(f"{names[k]} {r.probabilities[k]:.3f}" for k in top[1:]) + ".",
        "",
        f"Input as the model sees it: `input.png`, {'x'.join(map(str, meta.input_shape))} "
        f"(channels x height x width), normalised with mean {meta.mean} and std {meta.std}.",
        "",
        "## Layers",
        "",
        "| layer | type | output shape | parameters |",
        "|---|---|---|---:|",
    ]
    lines += [f"| {s.name} | {s.kind} | {' x '.join(map(str, s.output_shape))} | {s.parameters:,} |"
              for s in r.shapes]
    lines += ["", "## Feature maps (conv layer outputs)", ""]
    lines += [f"- `{g.path.name}`: {name}, {g.panels} maps in a {g.rows} x {g.cols} grid"
              for name, g in r.feature_maps.items()]
    lines += ["", f"## Filters of the first convolution (`{first_name}`)", "",
              f"`{r.filters.path.name}`: {r.filters.panels} filters"
              + (" in colour (RGB)" if r.filters.panels and len(meta.mean) == 3 and meta.input_shape[0] == 3
                 else " (mean over input channels)" if meta.input_shape[0] > 1 else "")
              + "; bright = positive weight, dark = negative.", ""]
    lines += ["## Grad-CAM", "",
              f"`gradcam.png`: where the evidence for **{names[cam.class_index]}** (logit {cam.score:.3f}) "
              f"lies, from the gradients at the last convolution `{cam.layer}` "
              f"({cam.cam.shape[0]} x {cam.cam.shape[1]}), scaled up to the input.", ""]
    w = r.worked
    lines += [
        f"## One value of `{first_name}` worked by hand",
        "",
        f"`{first_name}` has {conv_out.shape[1]} filters of {w and len(w.terms)} weights each, "
        f"stride {params['stride']}, padding {params['padding']}: its output is "
        f"{conv_out.shape[1]} x {conv_out.shape[2]} x {conv_out.shape[3]}. "
        "Each output value is the sum of pixel x weight over the kernel window, plus the bias; "
        "the window then moves by the stride.",
        "",
        worked_markdown(w, layer=first_name, actual=r.worked_actual, raw=raw, mean=meta.mean, std=meta.std),
    ]
    if r.worked_next is not None:
        n = r.worked_next
        actual = float(conv_out[0, n.filter, n.row, n.col])
        lines += ["", f"Moving one step right, the window starts {params['stride'][1]} column(s) later, "
                  f"at input column {n.left}: the same multiply-and-sum gives {n.value:+.6f} "
                  f"(model {actual:+.6f}, difference {abs(n.value - actual):.1e})."]
    return "\n".join(lines) + "\n"
