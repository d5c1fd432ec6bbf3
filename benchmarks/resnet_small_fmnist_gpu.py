"""Does resnet-small reach >= 93% on Fashion-MNIST? A plain-PyTorch GPU check of the architecture.

Usage:
    python benchmarks/resnet_small_fmnist_gpu.py /usr/share/datasets/fashion-mnist \
        '[["default", {}, 30, 0.2], ["wide", {"widths": [48, 96, 192]}, 15, 0.2]]'

Each variant is [name, ResNetSmall keyword arguments, epochs, one-cycle max LR]. The
script loads src/cnnkit/nn/resnet.py by path, so it needs only torch and numpy on the
GPU machine. Recipe: SGD Nesterov, weight decay 5e-4 on weights, one-cycle (25% warm-up),
label smoothing 0.1, batch 256, random flip + one random shift per batch, bf16 autocast.
Results: docs/results/layers.md.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

DEV = "cuda"
MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST pixel statistics, 0-1 scale


def load_resnet_module():
    spec = importlib.util.spec_from_file_location("resnet", "src/cnnkit/nn/resnet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def idx(folder: str, name: str, offset: int) -> torch.Tensor:
    with gzip.open(f"{folder}/{name}") as f:
        return torch.from_numpy(np.frombuffer(f.read(), np.uint8, offset=offset).copy()).to(DEV)


def norm(x: torch.Tensor) -> torch.Tensor:
    return (x.float() / 255 - MEAN) / STD


def augment(x: torch.Tensor) -> torch.Tensor:
    flip = torch.rand(x.shape[0], device=DEV) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    dx, dy = torch.randint(0, 5, (2,)).tolist()  # one shift per batch: cheap
    return F.pad(x, (2, 2, 2, 2))[:, :, dy:dy + 28, dx:dx + 28]


def evaluate(model, xte, yte) -> float:
    model.eval()
    correct = 0
    with torch.no_grad(), torch.autocast("cuda", torch.bfloat16):
        for i in range(0, len(xte), 2000):
            correct += (model(norm(xte[i:i + 2000])).argmax(1) == yte[i:i + 2000]).sum().item()
    model.train()
    return correct / len(xte)


def main() -> None:
    folder, variants = sys.argv[1], json.loads(sys.argv[2])
    resnet = load_resnet_module()
    xtr = idx(folder, "train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    ytr = idx(folder, "train-labels-idx1-ubyte.gz", 8).long()
    xte = idx(folder, "t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    yte = idx(folder, "t10k-labels-idx1-ubyte.gz", 8).long()
    batch = 256
    for name, kwargs, epochs, max_lr in variants:
        torch.manual_seed(0)
        model = resnet.ResNetSmall(1, 10, **kwargs).to(DEV).to(memory_format=torch.channels_last)
        steps = epochs * (len(xtr) // batch)
        decay = [p for p in model.parameters() if p.ndim > 1]
        no_decay = [p for p in model.parameters() if p.ndim <= 1]
        opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0}],
                              lr=0.1, momentum=0.9, nesterov=True)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr, total_steps=steps, pct_start=0.25)
        start, accuracies = time.time(), []
        for _ in range(epochs):
            perm = torch.randperm(len(xtr), device=DEV)
            for s in range(len(xtr) // batch):
                ids = perm[s * batch:(s + 1) * batch]
                x = norm(augment(xtr[ids])).contiguous(memory_format=torch.channels_last)
                with torch.autocast("cuda", torch.bfloat16):
                    loss = F.cross_entropy(model(x), ytr[ids], label_smoothing=0.1)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            accuracies.append(evaluate(model, xte, yte))
        print(json.dumps({"name": name, "kwargs": kwargs, "epochs": epochs, "max_lr": max_lr,
                          "params": sum(p.numel() for p in model.parameters()), "accuracies": accuracies,
                          "seconds": round(time.time() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
