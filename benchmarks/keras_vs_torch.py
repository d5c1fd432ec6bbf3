"""The cost of training a Keras Application in cnnkit's loop: keras:NAME against the torchvision twin.

Both are built as cnnkit transfer models (same head, same 1-channel input, random weights) and
timed on the same training step (forward, loss, backward, AdamW step) on one batch, fp32, after
warm-up; the median of the repeats is reported. Keras's PyTorch backend runs the network in
NHWC and transposes around every convolution, so some overhead is expected; this measures it.

    python benchmarks/keras_vs_torch.py                       # MobileNetV2 and ResNet50, batch 32, 64x64
    python benchmarks/keras_vs_torch.py --pairs keras:VGG16=tv:vgg16 --size 32
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch

from cnnkit.fileio import write_json
from cnnkit.models.pretrained import build_transfer


def step_seconds(name: str, batch: int, size: int, repeats: int) -> float:
    net, _ = build_transfer(name, input_shape=(1, size, size), num_classes=10)
    net.train()
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-3)
    x = torch.rand(batch, 1, size, size)
    y = torch.randint(0, 10, (batch,))
    times = []
    for i in range(repeats + 2):  # two warm-up steps
        tic = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
        if i >= 2:
            times.append(time.perf_counter() - tic)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pairs", default="keras:MobileNetV2=tv:mobilenet_v2,keras:ResNet50=tv:resnet50")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--json", default="benchmarks/results-keras-vs-torch.json")
    args = p.parse_args(argv)
    rows = []
    print(f"training step, batch {args.batch} of 1x{args.size}x{args.size}, fp32, {torch.get_num_threads()} threads, "
          f"{platform.machine()} CPU, torch {torch.__version__}")
    for pair in args.pairs.split(","):
        keras_name, torch_name = pair.split("=")
        k = step_seconds(keras_name, args.batch, args.size, args.repeats)
        t = step_seconds(torch_name, args.batch, args.size, args.repeats)
        rows.append({"keras": keras_name, "torch": torch_name, "keras_s": k, "torch_s": t})
        print(f"{keras_name:<22} {k * 1000:8.0f} ms  ({args.batch / k:6.0f} img/s)   {torch_name:<18} "
              f"{t * 1000:8.0f} ms  ({args.batch / t:6.0f} img/s)   keras/torch {k / t:.2f}x", flush=True)
    write_json(args.json, {"rows": rows, "argv": sys.argv[1:]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
