"""Inference speed of one model in each runtime: PyTorch, ONNX Runtime, OpenCV DNN (CPU).

Latency at batch 1 (median milliseconds per call) and throughput at batch 64
(images per second, median over rounds). The runtimes take turns inside each
round, so a busy machine slows them alike and the ratios stay fair; every
runtime gets the same thread count (default 1: on a shared 2-core machine, two
spinning OpenMP threads per runtime make PyTorch's batch-1 latency collapse
from about 1 ms to over 100 ms, which measures the neighbours, not the runtime).

    python benchmarks/inference.py                              # simple-cnn on 1x28x28
    python benchmarks/inference.py --model tv:resnet18 --input 3x224x224 --rounds 5
    python benchmarks/inference.py --out docs/results/inference.md
    python benchmarks/inference.py --foreign net.onnx --size 224x224 --scale 1/255 --swap-rb
    python benchmarks/inference.py --foreign tiny.prototxt      # preprocessing from tiny.cnnkit.yaml

Weights are random: speed does not depend on their values. `--foreign FILE` times a model file
cnnkit did not export (ONNX, Caffe .prototxt/.caffemodel, TensorFlow .pb, Darknet .cfg/.weights)
in OpenCV DNN, opened as `cnnkit predict` opens it (the same --config/--size/--channels/--scale/
--mean/--std/--swap-rb flags, or its <stem>.cnnkit.yaml); a foreign .onnx is also timed in ONNX
Runtime, and the first runtime is the baseline of the speed-up columns (there is no PyTorch twin).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from cnnkit.deploy.export import export_onnx
from cnnkit.deploy.runtimes import (
    ModelInfo,
    OnnxRuntime,
    OpenCVRuntime,
    Runtime,
    TorchRuntime,
    open_runtime,
)
from cnnkit.models.bundle import BundleMeta


def build(name: str, shape: tuple[int, int, int], classes: int) -> torch.nn.Module:
    if name == "tv:resnet18":  # built directly, so the benchmark needs no registry source
        import torchvision

        return torchvision.models.resnet18(weights=None, num_classes=classes)
    from cnnkit.models.registry import create_model

    return create_model(name, input_shape=shape, num_classes=classes)


class PlainOnnxRuntime(Runtime):
    """ONNX Runtime on an ONNX file without cnnkit's metadata (a foreign model's info is borrowed)."""

    name = "onnxruntime"

    def __init__(self, path: Path, foreign, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        super().__init__(foreign.info)
        self.foreign = foreign  # its outputs are read as the OpenCV runtime reads them (softmax -> log)
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]
        return self.foreign.as_logits(out.reshape(len(x), -1))


def foreign_runtimes(args) -> dict[str, Runtime]:
    flags = {k: getattr(args, k) for k in ("config", "preprocessing", "size", "channels", "scale", "mean", "std",
                                            "swap_rb")}
    rt = open_runtime(args.foreign, "opencv", preprocessing={k: v for k, v in flags.items() if v is not None})
    runtimes: dict[str, Runtime] = {"opencv": rt}
    if Path(args.foreign).suffix.lower() == ".onnx":
        runtimes["onnxruntime"] = PlainOnnxRuntime(Path(args.foreign), rt, args.threads)
    return runtimes


def time_calls(run, x: np.ndarray, calls: int) -> float:
    """Seconds per call, over `calls` back-to-back calls."""
    start = time.perf_counter()
    for _ in range(calls):
        run(x)
    return (time.perf_counter() - start) / calls


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="simple-cnn", help="registry name, layer spec, or tv:resnet18")
    p.add_argument("--input", default="1x28x28", help="C x H x W")
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seconds", type=float, default=0.3, help="rough time per measurement")
    p.add_argument("--out", help="also write the Markdown table here")
    g = p.add_argument_group("a foreign model file (as `cnnkit predict` takes it; docs/export.md)")
    g.add_argument("--foreign", metavar="FILE", help="time this model file in OpenCV DNN instead of --model")
    g.add_argument("--config", metavar="FILE", help="its second file (default: the one beside it)")
    g.add_argument("--preprocessing", metavar="YAML", help="default: <stem>.cnnkit.yaml beside it")
    g.add_argument("--size", metavar="WxH")
    g.add_argument("--channels", type=int, choices=[1, 3])
    g.add_argument("--scale")
    g.add_argument("--mean")
    g.add_argument("--std")
    g.add_argument("--swap-rb", action=argparse.BooleanOptionalAction, default=None)
    args = p.parse_args()

    import cv2

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if args.foreign:
        runtimes = foreign_runtimes(args)
        shape = tuple(runtimes["opencv"].info.input_shape)
        args.model = Path(args.foreign).name
    else:
        shape = tuple(int(v) for v in args.input.lower().split("x"))
        torch.manual_seed(0)
        model = build(args.model, shape, args.classes).eval()
        meta = BundleMeta({}, list(shape), [str(i) for i in range(args.classes)], [0.5] * shape[0], [0.25] * shape[0])
        info = ModelInfo(list(shape), meta.mean, meta.std, meta.class_names)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            export_onnx(model, meta, path)
            runtimes = {"torch": TorchRuntime(model, info), "onnxruntime": OnnxRuntime(path, args.threads),
                        "opencv": OpenCVRuntime(path)}
    first = next(iter(runtimes))

    rng = np.random.default_rng(0)
    one = rng.standard_normal((1, *shape), dtype=np.float32)
    many = rng.standard_normal((args.batch, *shape), dtype=np.float32)
    reference = runtimes[first].run(many)
    calls = {}
    for name, rt in runtimes.items():  # warm up, check agreement, size the measurements
        rt.run(one)
        assert np.abs(rt.run(many) - reference).max() <= 1e-4 * max(1.0, float(np.abs(reference).max())), name
        calls[name] = (max(3, int(args.seconds / max(time_calls(rt.run, one, 3), 1e-6))),
                       max(1, int(args.seconds / max(time_calls(rt.run, many, 1), 1e-6))))
    latency = {n: [] for n in runtimes}
    throughput = {n: [] for n in runtimes}
    for _ in range(args.rounds):
        for name, rt in runtimes.items():
            latency[name].append(time_calls(rt.run, one, calls[name][0]) * 1e3)
            throughput[name].append(args.batch / time_calls(rt.run, many, calls[name][1]))

    import onnxruntime

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    base = statistics.median(latency[first])
    lines = [
        f"`{args.model}` on {'x'.join(map(str, shape))}, {args.threads} thread(s) per runtime, {args.rounds} rounds "
        f"(median), {cpu}, {os.cpu_count()} cores; torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}, opencv {cv2.__version__}",
        "",
        f"| runtime | latency, batch 1 (ms) | speed-up | throughput, batch {args.batch} (images/s) | speed-up |",
        "|---|---:|---:|---:|---:|",
    ]
    base_tp = statistics.median(throughput[first])
    for name in runtimes:
        lat, tp = statistics.median(latency[name]), statistics.median(throughput[name])
        tp_text = f"{tp:,.0f}" if tp >= 100 else f"{tp:.1f}"
        lines.append(f"| {name} | {lat:.3f} | {base / lat:.2f}x | {tp_text} | {tp / base_tp:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
