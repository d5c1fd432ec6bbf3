"""Training speed on a GPU: fp32 vs bf16 autocast vs channels_last vs torch.compile.

Each variant is a real `cnnkit.train` run on Fashion-MNIST (the Trainer, the
tensor-path loader, validation each epoch), so the numbers are what a user gets.
Reported per variant: images/s of the steady epochs (the first is warm-up),
seconds per epoch, and test accuracy after the epochs. With --sweep it also
trains the recipe candidates (for docs/recipes.md) at their full length.

    python benchmarks/gpu_speed.py --out results/           # speed table
    python benchmarks/gpu_speed.py --sweep --out results/   # + recipe candidates

One JSON line per run goes to OUT/gpu_speed.jsonl as soon as it finishes, so a
time limit loses only the run in progress.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

try:  # an installed (or PYTHONPATH) cnnkit first; else the source tree beside this file
    import cnnkit
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import cnnkit
from cnnkit.train.recipes import SMALL_28, WIDE_28  # noqa: E402

VGG_28 = ("conv64-3-same,bn,relu,conv64-3-same,bn,relu,maxpool2,conv128-3-same,bn,relu,conv128-3-same,bn,relu,"
          "maxpool2,conv256-3-same,bn,relu,maxpool2,gap,flatten,dropout0.2")

SPEED_VARIANTS = [  # (name, overrides)
    ("fp32", dict(amp="off", channels_last=False)),
    ("fp32+channels_last", dict(amp="off", channels_last=True)),
    ("bf16", dict(amp="bf16", channels_last=False)),
    ("bf16+channels_last", dict(amp="bf16", channels_last=True)),
    ("bf16+channels_last+compile", dict(amp="bf16", channels_last=True, compile=True)),
]

MID_28 = ("conv32-3-same,bn,relu,conv32-3-same,bn,relu,maxpool2,conv64-3-same,bn,relu,conv64-3-same,bn,relu,"
          "maxpool2,conv128-3-same,bn,relu,maxpool2,flatten,dropout0.3")
SIMPLE_WIDE = "conv64-3-same,bn,relu,maxpool2,conv128-3-same,bn,relu,maxpool2,flatten,dropout0.3,dense256,relu,dropout0.3"
_DEFAULTS = dict(batch_size=256, lr=4e-3, label_smoothing=0.1, augment="crop-flip", tta=True)
SWEEP = [  # recipe candidates: (name, overrides); default-recipe candidates first (10 epochs or fewer)
    ("simple-e10", dict(_DEFAULTS, model="simple-cnn", epochs=10)),
    ("simple-e10-none", dict(_DEFAULTS, model="simple-cnn", epochs=10, augment="none")),
    ("simple-e10-crop", dict(_DEFAULTS, model="simple-cnn", epochs=10, augment="crop")),
    ("small28-e10-none", dict(_DEFAULTS, model=SMALL_28, epochs=10, augment="none")),
    ("mid28-e8", dict(_DEFAULTS, model=MID_28, epochs=8)),
    ("mid28-e8-none", dict(_DEFAULTS, model=MID_28, epochs=8, augment="none")),
    ("wide28-e8", dict(_DEFAULTS, model=WIDE_28, epochs=8)),
    ("simplewide-e8", dict(_DEFAULTS, model=SIMPLE_WIDE, epochs=8)),
    ("simplewide-e8-none", dict(_DEFAULTS, model=SIMPLE_WIDE, epochs=8, augment="none")),
    ("vgg28-e30-best", dict(_DEFAULTS, model=VGG_28, epochs=30, batch_size=128, lr=3e-3,
                            augment="crop-flip-erase", ema=0.999)),
    ("wide28-e40-best", dict(_DEFAULTS, model=WIDE_28, epochs=40, batch_size=128, lr=3e-3,
                             augment="crop-flip-erase", ema=0.999)),
]


def run(name: str, overrides: dict, out: Path, runs: Path, epochs: int | None = None) -> dict:
    args = dict(data="fashion-mnist", out=str(runs), name=name, tensorboard=False, **overrides)
    if epochs is not None:
        args["epochs"] = epochs
    tic = time.perf_counter()
    result = cnnkit.train(log=lambda *_: None, live=False, **args)
    wall = time.perf_counter() - tic
    timing = [line.split(",") for line in (result.run_dir / "timing.csv").read_text().splitlines()[1:]]
    steady = [float(t[2]) for t in timing[1:]] or [float(timing[0][2])]
    row = {
        "name": name, "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "steady_images_per_second": round(sum(steady) / len(steady), 1),
        "first_epoch_seconds": round(float(timing[0][1]), 2),
        "steady_epoch_seconds": round(sum(float(t[1]) for t in timing[1:]) / max(len(timing) - 1, 1), 3),
        "wall_seconds": round(wall, 1),
        **{k: result.summary.get(k) for k in ("test_accuracy", "test_accuracy_no_tta", "best_val_accuracy",
                                               "epochs", "train_seconds", "amp", "channels_last")},
        "overrides": {k: v for k, v in overrides.items() if k != "model"},
        "model": overrides.get("model", "simple-cnn")[:60],
    }
    with open(out / "gpu_speed.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="benchmarks/results")
    p.add_argument("--epochs", type=int, default=3, help="epochs per speed variant")
    p.add_argument("--models", default="small28,wide28", help="speed table models: small28, wide28, simple")
    p.add_argument("--sweep", action="store_true", help="also train the recipe candidates")
    p.add_argument("--only-sweep", action="store_true")
    p.add_argument("--limit", type=int, help="first N training images (a quick check of the script)")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(tempfile.mkdtemp(prefix="gpu_speed_runs_"))
    extra = {"limit": args.limit} if args.limit else {}
    models = {"small28": SMALL_28, "wide28": WIDE_28, "simple": "simple-cnn"}
    if not args.only_sweep:
        for m in args.models.split(","):
            for name, overrides in SPEED_VARIANTS:
                run(f"{m}-{name}", dict(model=models[m], batch_size=256, lr=4e-3, label_smoothing=0.1,
                                        augment="crop-flip", **overrides, **extra), out, runs, args.epochs)
    if args.sweep or args.only_sweep:
        for name, overrides in SWEEP:
            run(name, {**overrides, **extra}, out, runs, 2 if args.limit else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
