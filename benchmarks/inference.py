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

Weights are random: speed does not depend on their values.
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
from cnnkit.deploy.runtimes import ModelInfo, OnnxRuntime, OpenCVRuntime, TorchRuntime
from cnnkit.models.bundle import BundleMeta


def build(name: str, shape: tuple[int, int, int], classes: int) -> torch.nn.Module:
    if name == "tv:resnet18":  # built directly, so the benchmark needs no registry source
        import torchvision

        return torchvision.models.resnet18(weights=None, num_classes=classes)
    from cnnkit.models.registry import create_model

    return create_model(name, input_shape=shape, num_classes=classes)


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
    args = p.parse_args()

    shape = tuple(int(v) for v in args.input.lower().split("x"))
    torch.manual_seed(0)
    model = build(args.model, shape, args.classes).eval()
    meta = BundleMeta({}, list(shape), [str(i) for i in range(args.classes)], [0.5] * shape[0], [0.25] * shape[0])
    info = ModelInfo(list(shape), meta.mean, meta.std, meta.class_names)

    import cv2

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        export_onnx(model, meta, path)
        runtimes = {"torch": TorchRuntime(model, info), "onnxruntime": OnnxRuntime(path, args.threads),
                    "opencv": OpenCVRuntime(path)}

    rng = np.random.default_rng(0)
    one = rng.standard_normal((1, *shape), dtype=np.float32)
    many = rng.standard_normal((args.batch, *shape), dtype=np.float32)
    reference = runtimes["torch"].run(many)
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
    base = statistics.median(latency["torch"])
    lines = [
        f"`{args.model}` on {'x'.join(map(str, shape))}, {args.threads} thread(s) per runtime, {args.rounds} rounds "
        f"(median), {cpu}, {os.cpu_count()} cores; torch {torch.__version__}, onnxruntime "
        f"{onnxruntime.__version__}, opencv {cv2.__version__}",
        "",
        f"| runtime | latency, batch 1 (ms) | speed-up | throughput, batch {args.batch} (images/s) | speed-up |",
        "|---|---:|---:|---:|---:|",
    ]
    base_tp = statistics.median(throughput["torch"])
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
