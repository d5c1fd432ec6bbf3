"""Trainer overhead: cnnkit's Trainer against a minimal plain-PyTorch loop, same model, same data.

Both train the same architecture (same initial weights), with the same optimizer
(AdamW, decay sparing norms/biases), schedule, label smoothing, mixed precision
and memory format, on the same images, in the same process. They take turns,
one short epoch each, for many rounds, so a neighbour's load hits both alike.
Reported: the best round of each and their ratio (`ratio`, cnnkit / plain: the
best round is the one least disturbed by other processes, so on a shared machine
it is the closest to the true speed), the median of the per-round ratios, and
the medians.

The plain loop is what one would write by hand: the split as one normalised
float tensor, a permutation per epoch, slicing, forward/backward/step, the loss
summed on the device and read once per epoch.

    python benchmarks/throughput.py                       # Fashion-MNIST, the default recipe's model
    python benchmarks/throughput.py --images 16384 --rounds 6 --json out.json
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

try:
    import cnnkit  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnkit.data.dataset import load_dataset  # noqa: E402
from cnnkit.device import pick_device  # noqa: E402
from cnnkit.fileio import write_json  # noqa: E402
from cnnkit.models.registry import create_model  # noqa: E402
from cnnkit.train.config import TrainConfig  # noqa: E402
from cnnkit.train.optim import make_optimizer, make_scheduler  # noqa: E402
from cnnkit.train.recipes import apply_recipe  # noqa: E402
from cnnkit.train.trainer import Trainer  # noqa: E402


def plain_epoch(model, x_all, y_all, optimizer, scheduler, criterion, batch, amp, device, generator) -> float:
    """One epoch of the hand-written loop; returns its wall seconds."""
    model.train()
    tic = time.perf_counter()
    order = torch.randperm(len(y_all), generator=generator).to(device)
    total = torch.zeros((), device=device)
    for i in range(0, len(order), batch):
        idx = order[i:i + batch]
        x, y = x_all[idx], y_all[idx]
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = criterion(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.detach()
    total.item()  # the one sync of the epoch
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - tic


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--model", help="default: the dataset's recipe model")
    p.add_argument("--images", type=int, default=4096, help="training images per epoch")
    p.add_argument("--rounds", type=int, default=15, help="epochs of each, interleaved")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default="auto")
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args()

    data = load_dataset(args.data, limit=args.images)
    config = apply_recipe(TrainConfig(data=args.data, model=args.model, batch_size=args.batch_size,
                                      epochs=args.rounds + 1, amp=args.amp, augment="none"), data.name, data)
    device = pick_device(args.device)
    torch.manual_seed(0)
    model = create_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes)
    twin = copy.deepcopy(model)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(model, data, config, device, Path(scratch))
        amp, cl = trainer.amp, trainer.channels_last
        # The plain loop: the same model, settings and images, prepared once as floats.
        twin = twin.to(device, memory_format=torch.channels_last if cl else torch.contiguous_format)
        mean = torch.tensor(data.mean).view(1, -1, 1, 1)
        std = torch.tensor(data.std).view(1, -1, 1, 1)
        x_all = ((data.train.images.float() / 255 - mean) / std).to(device)
        if cl:
            x_all = x_all.contiguous(memory_format=torch.channels_last)
        y_all = data.train.labels.to(device)
        optimizer = make_optimizer(twin, config)
        scheduler = make_scheduler(optimizer, config, config.epochs * -(-len(y_all) // config.batch_size))
        criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing or 0.0)
        g = torch.Generator().manual_seed(0)
        n = len(y_all)
        # warm-up epoch each (oneDNN/cuDNN pick their kernels), not counted
        trainer.train_epoch(0)
        plain_epoch(twin, x_all, y_all, optimizer, scheduler, criterion, config.batch_size, amp, device, g)
        ours, theirs = [], []
        for r in range(args.rounds):
            tic = time.perf_counter()
            trainer.train_epoch(r + 1)
            if device.type == "cuda":
                torch.cuda.synchronize()
            ours.append(n / (time.perf_counter() - tic))
            theirs.append(n / plain_epoch(twin, x_all, y_all, optimizer, scheduler, criterion,
                                          config.batch_size, amp, device, g))
    result = {
        "benchmark": "throughput", "data": data.name, "model": config.model, "images_per_epoch": n,
        "batch_size": config.batch_size, "rounds": args.rounds, "device": str(device),
        "amp": str(amp).replace("torch.", "") if amp else "off", "channels_last": cl,
        "threads": torch.get_num_threads(),
        "cnnkit_images_per_second": round(max(ours), 1),
        "plain_images_per_second": round(max(theirs), 1),
        "ratio": round(max(ours) / max(theirs), 4),
        "ratio_median_of_rounds": round(statistics.median(o / t for o, t in zip(ours, theirs, strict=True)), 4),
        "cnnkit_median": round(statistics.median(ours), 1),
        "plain_median": round(statistics.median(theirs), 1),
        "cnnkit_rounds": [round(v) for v in ours], "plain_rounds": [round(v) for v in theirs],
    }
    print(json.dumps(result, indent=2))
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
