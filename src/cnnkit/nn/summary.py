"""A Keras-style summary of any PyTorch model: every layer's output shape, parameters and cost.

`summarize(model, input_shape)` runs one forward pass on a zero image with a
forward hook on every leaf module, so it works for spec-built nets, the built-ins
and any registry model (torchvision, timm, ...) alike. Each row gives the layer's
output shape (without the batch), its own parameters split into trainable and
frozen (`requires_grad=False`, as transfer learning leaves them), and its
multiply-accumulates (MACs) per image:

    convolution   MACs = C_out x H_out x W_out x (C_in / groups) x K_h x K_w
    dense         MACs = out_features x in_features

Activations, pooling, batch norm and dropout are counted as 0 MACs: they are
element-wise or comparisons, and batch norm folds into the convolution before it
at inference. The activation memory is the size of every layer's output for one
batch, which is about what a training step keeps for its backward pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from ..errors import ShapeError

Shape = tuple[int, ...]


@dataclass
class Row:
    name: str  # qualified module name, e.g. conv1 or layer1.0.conv2
    type: str  # module class, e.g. Conv2d
    output_shape: Shape  # without the batch dimension
    trainable: int  # this layer's own parameters with requires_grad
    frozen: int  # and without
    macs: int  # multiply-accumulates per image
    spec: str = ""  # the layer's spec token, for spec-built models

    @property
    def params(self) -> int:
        return self.trainable + self.frozen


@dataclass
class Summary:
    model: str
    input_shape: Shape
    batch_size: int
    rows: list[Row]
    trainable_params: int
    frozen_params: int
    macs: int  # per image
    activation_elements: int  # per image: the outputs of every row
    bytes_per_element: int
    param_bytes: int
    buffer_bytes: int  # batch-norm running statistics and the like
    unlisted_params: int = 0  # parameters no leaf layer owns (used outside a module, or never)
    notes: list[str] = field(default_factory=list)

    @property
    def total_params(self) -> int:
        return self.trainable_params + self.frozen_params

    @property
    def activation_bytes(self) -> int:
        """Memory of every layer's output for one batch of `batch_size` images."""
        input_elements = 1
        for d in self.input_shape:
            input_elements *= d
        return (self.activation_elements + input_elements) * self.batch_size * self.bytes_per_element

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(total_params=self.total_params, activation_bytes=self.activation_bytes)
        return d

    def format(self) -> str:
        """The table, as `cnnkit summary` prints it."""
        show_spec = any(r.spec for r in self.rows)
        head = ["Layer", "Type"] + (["Spec"] if show_spec else []) + ["Output shape", "Trainable", "Frozen", "MACs"]
        body = [["input", "", *([""] if show_spec else []), _shape(self.input_shape), "", "", ""]]
        for r in self.rows:
            body.append([r.name, r.type, *([r.spec] if show_spec else []), _shape(r.output_shape),
                         f"{r.trainable:,}", f"{r.frozen:,}", f"{r.macs:,}"])
        widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
        right = {len(head) - 3, len(head) - 2, len(head) - 1}  # numbers align right

        def line(cells: list[str]) -> str:
            return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                             for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

        rule = "-" * len(line(head))
        out = [f'Model: {self.model}    input: {_shape(self.input_shape)}    batch: {self.batch_size}',
               rule, line(head), rule, *(line(b) for b in body), "=" * len(rule)]
        out.append(f"Total params:     {self.total_params:>14,}  ({_size(self.param_bytes)})")
        out.append(f"Trainable params: {self.trainable_params:>14,}")
        out.append(f"Frozen params:    {self.frozen_params:>14,}")
        if self.unlisted_params:
            out.append(f"  of which outside the listed layers: {self.unlisted_params:,}")
        out.append(f"MACs per image:   {self.macs:>14,}  ({_count(self.macs)})")
        out.append(f"Activations for a batch of {self.batch_size}: {_size(self.activation_bytes)} "
                   f"(input + every layer's output, {self.bytes_per_element} bytes per value)")
        if self.buffer_bytes:
            out.append(f"Buffers (batch-norm statistics): {_size(self.buffer_bytes)}")
        out.extend(self.notes)
        return "\n".join(out)

    def __str__(self) -> str:
        return self.format()


def _shape(shape: Shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "scalar"


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.2f} {unit}"
        n /= 1024
    raise AssertionError


def _count(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def layer_macs(module: nn.Module, output: torch.Tensor) -> int:
    """Multiply-accumulates of one call of `module` per image, given its output (with batch)."""
    per_image = output.numel() // max(output.shape[0], 1) if output.dim() else output.numel()
    if isinstance(module, nn.modules.conv._ConvNd) and not isinstance(module, nn.modules.conv._ConvTransposeNd):
        window = 1
        for k in module.kernel_size:
            window *= k
        return per_image * (module.in_channels // module.groups) * window
    if isinstance(module, nn.Linear):
        return per_image * module.in_features
    return 0


def _first_tensor(value: Any) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            if (t := _first_tensor(v)) is not None:
                return t
    if isinstance(value, dict):
        for v in value.values():
            if (t := _first_tensor(v)) is not None:
                return t
    return None


def summarize(model: nn.Module, input_shape: Shape, batch_size: int = 1) -> Summary:
    """Rows and totals for `model` on images of `input_shape` (C, H, W).

    One forward pass, in eval mode and without gradients, on a zero image; the
    model's training mode is restored afterwards. A model that cannot take the
    input raises ShapeError naming the layer that failed.
    """
    if batch_size < 1:
        raise ShapeError(f"batch size must be at least 1, got {batch_size}")
    input_shape = tuple(int(d) for d in input_shape)
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    tokens: dict[str, str] = getattr(model, "spec_tokens", {}) or {}
    strip = "layers." if tokens else ""  # spec nets: show conv1, not layers.conv1

    leaves = [(name, m) for name, m in model.named_modules() if name and not any(True for _ in m.children())]
    if not leaves and not list(model.children()):
        leaves = [(type(model).__name__, model)]
    rows: list[Row] = []
    seen: set[int] = set()
    calls: dict[str, int] = {}
    current: list[tuple[str, nn.Module, Any]] = []

    def pre_hook(name):
        def hook(module, args):
            current.append((name, module, args))
        return hook

    def hook(name):
        def record(module, args, output):
            current.pop()
            out = _first_tensor(output)
            calls[name] = calls.get(name, 0) + 1
            trainable = frozen = 0
            if id(module) not in seen:  # a module called twice counts its weights once
                seen.add(id(module))
                for p in module.parameters(recurse=False):
                    if p.requires_grad:
                        trainable += p.numel()
                    else:
                        frozen += p.numel()
            shape = tuple(out.shape[1:]) if out is not None and out.dim() else ()
            label = name[len(strip):] if strip and name.startswith(strip) else name
            rows.append(Row(
                label if calls[name] == 1 else f"{label} (call {calls[name]})", type(module).__name__,
                shape, trainable, frozen, layer_macs(module, out) if out is not None else 0,
                tokens.get(label.split(".")[0], ""),
            ))
        return record

    handles = []
    for name, module in leaves:
        handles.append(module.register_forward_pre_hook(pre_hook(name)))
        handles.append(module.register_forward_hook(hook(name)))
    was_training = model.training
    x = torch.zeros((1, *input_shape), device=device, dtype=dtype)
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    except (RuntimeError, ValueError, IndexError) as e:
        where = ""
        if current:
            name, module, args = current[-1]
            arg = _first_tensor(args)
            got = f" on an input of {_shape(tuple(arg.shape[1:]))}" if arg is not None else ""
            where = f" layer {name} ({type(module).__name__}) fails{got}:"
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ShapeError(f"{type(model).__name__} cannot take a {_shape(input_shape)} input:{where} {reason}. "
                         "Give a larger --input or a model made for this size.") from e
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    frozen = sum(p.numel() for p in params if not p.requires_grad)
    listed = sum(r.params for r in rows)
    return Summary(
        model=type(model).__name__ + (f" ({model.spec})" if hasattr(model, "spec") and isinstance(model.spec, str) else ""),
        input_shape=input_shape,
        batch_size=batch_size,
        rows=rows,
        trainable_params=trainable,
        frozen_params=frozen,
        macs=sum(r.macs for r in rows),
        activation_elements=sum(_numel(r.output_shape) for r in rows),
        bytes_per_element=torch.finfo(dtype).bits // 8,
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
        unlisted_params=max(trainable + frozen - listed, 0),
    )


def _numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
