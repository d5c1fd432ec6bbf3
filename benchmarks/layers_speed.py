"""Throughput of the built-in models on CPU: images/s on 28x28 batches of 256.

Usage: python benchmarks/layers_speed.py [--rounds 5] [--threads N]

Training steps (forward + backward + AdamW) and inference (eval, no grad) for each
built-in, measured interleaved in one process so that a busy machine slows every
model alike; the median of the rounds is reported, with the ratio to simple-cnn.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from cnnkit.models import create_model

MODELS = ["simple-cnn", "lenet5", "tiny-vgg", "resnet-small"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="batches per model per round")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x, y = torch.randn(256, 1, 28, 28), torch.randint(0, 10, (256,))
    models = {n: create_model(n, input_shape=(1, 28, 28), num_classes=10) for n in MODELS}
    opts = {n: torch.optim.AdamW(m.parameters(), 1e-3) for n, m in models.items()}
    train = {n: [] for n in MODELS}
    infer = {n: [] for n in MODELS}
    for r in range(args.rounds + 1):  # round 0 warms up
        for name, model in models.items():
            model.train()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                loss = torch.nn.functional.cross_entropy(model(x), y)
                opts[name].zero_grad(set_to_none=True)
                loss.backward()
                opts[name].step()
            t1 = time.perf_counter()
            model.eval()
            with torch.no_grad():
                for _ in range(args.steps):
                    model(x)
            t2 = time.perf_counter()
            if r:
                train[name].append(256 * args.steps / (t1 - t0))
                infer[name].append(256 * args.steps / (t2 - t1))
    base = statistics.median(train["simple-cnn"])
    print(f"torch {torch.__version__}, {args.threads} threads, batch 256 of 1x28x28, median of {args.rounds} rounds")
    print(f"{'model':<14}{'params':>10}{'MACs/img':>12}{'train img/s':>13}{'infer img/s':>13}{'train vs simple-cnn':>21}")
    from cnnkit.nn.summary import summarize

    for name, model in models.items():
        s = summarize(model, (1, 28, 28))
        t, i = statistics.median(train[name]), statistics.median(infer[name])
        print(f"{name:<14}{s.total_params:>10,}{s.macs:>12,}{t:>13,.0f}{i:>13,.0f}{t / base:>21.2f}")


if __name__ == "__main__":
    main()
