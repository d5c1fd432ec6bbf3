"""Time to accuracy on Fashion-MNIST: training seconds until the test accuracy first reaches 92/93/94%.

Trains a recipe with `cnnkit.train` (the real run: run directory, checkpoints,
validation) and, after every epoch, also measures the test accuracy of the
current weights (EMA weights when the recipe uses them) outside the clock. The
clock is the run's own `train_seconds` (training steps only, as in summary.json).
A recipe's one-cycle schedule is fixed in advance, so the accuracy after epoch k
of an n-epoch recipe is what stopping there would give only approximately; the
final row is the recipe's real result.

    python benchmarks/time_to_accuracy.py                     # the default recipe
    python benchmarks/time_to_accuracy.py --recipe best       # the long one (tens of minutes on 2 cores)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

try:
    import cnnkit  # noqa: F401
except ImportError:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnkit.fileio import write_json  # noqa: E402
from cnnkit.models.registry import create_model  # noqa: E402
from cnnkit.train.run import finish_run, make_trainer, start_run  # noqa: E402

THRESHOLDS = (0.92, 0.93, 0.94, 0.945)


class TestEachEpoch:
    """After each epoch: test accuracy of the current weights, with the training clock so far."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def on_epoch_end(self, trainer, result) -> None:
        loader = trainer.eval_loader(trainer.data.test)
        _, accuracy = trainer.evaluate(loader)
        self.rows.append({"epoch": result.epoch, "train_seconds": round(trainer.state.train_seconds, 2),
                          "test_accuracy": round(accuracy, 4), "val_accuracy": round(result.val_accuracy, 4)})
        print(json.dumps(self.rows[-1]), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--recipe", default="default")
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--json", help="also write the result here")
    args = p.parse_args()
    quiet = lambda *a, **k: None  # noqa: E731
    with tempfile.TemporaryDirectory() as out:
        tic = time.perf_counter()
        config, data, run_dir, device = start_run(None, data=args.data, recipe=args.recipe, epochs=args.epochs,
                                                  out=out, tensorboard=False, log=quiet)
        model = create_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes)
        trainer = make_trainer(model, data, config, device, run_dir, live=False, log=quiet)
        probe = TestEachEpoch()
        trainer.callbacks.append(probe)
        trainer.fit()
        summary = finish_run(trainer, log=quiet).summary
        wall = time.perf_counter() - tic
    reached = {}
    for t in THRESHOLDS:
        hit = next((r for r in probe.rows if r["test_accuracy"] >= t), None)
        reached[f"{t:.3f}".rstrip("0")] = hit["train_seconds"] if hit else None
    final_ok = {f"{t:.3f}".rstrip("0"): summary["train_seconds"] for t in THRESHOLDS
                if summary["test_accuracy"] >= t}
    result = {
        "benchmark": "time_to_accuracy", "data": data.name, "recipe": args.recipe, "model": config.model,
        "epochs": summary["epochs"], "device": summary["device"], "amp": summary["amp"],
        "final_test_accuracy": summary["test_accuracy"], "train_seconds": summary["train_seconds"],
        "wall_seconds": round(wall, 1),
        "seconds_to_accuracy_during_training": reached,
        "seconds_to_accuracy_final_model": final_ok,  # best-on-validation weights (+ TTA if the recipe has it)
        "per_epoch": probe.rows,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
