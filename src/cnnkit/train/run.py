"""The run engine behind `cnnkit train`, `finetune` and `lr-find`: one start-up, one trainer, one finish.

`prepare` resolves the config (overrides, the dataset's recipe, seeds) and loads the data;
`start_run` adds the device and the run directory; `make_trainer` builds a Trainer that writes
bundles, metrics.csv and progress; `finish_run` tests the best weights and writes summary.json,
plots and report.md (DESIGN.md, "Run directory"). The public verbs in `cnnkit.api` call these.
"""

from __future__ import annotations

import platform
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.dataset import DataSplits, load_dataset
from ..errors import CnnkitError, ConfigError
from ..fileio import read_yaml, remove_temporaries, write_json, write_yaml
from ..models.bundle import BundleMeta, load_bundle, save_bundle, set_summary
from ..models.registry import create_model
from ..tasks.base import get_task
from . import distributed, runlock
from .config import TrainConfig
from .guard import RunGuard
from .progress import EpochPrinter
from .recipes import apply_recipe
from .rundir import discard_run_dir, find_run, new_run_dir, point_latest, write_metrics
from .trainer import Trainer


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]

    @property
    def test_accuracy(self) -> float:
        """A classification run's test accuracy (other tasks: `summary["test_<metric>"]`)."""
        return self.summary["test_accuracy"]


def seed_everything(seed: int, deterministic: bool = False) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def bundle_meta(model: nn.Module, data: DataSplits, summary: dict | None = None) -> BundleMeta:
    return BundleMeta(
        architecture=getattr(model, "cnnkit_arch", {}),
        input_shape=list(data.input_shape),
        class_names=list(data.class_names),
        mean=list(data.mean),
        std=list(data.std),
        summary=summary or {},
        task=data.task,
    )


def prepare(config: TrainConfig | dict | None, *, splits: DataSplits | None = None, log=print,
            **overrides: Any) -> tuple[TrainConfig, DataSplits, str]:
    """The config with `overrides` and the dataset's recipe, the data (loaded, or `splits` given in
    memory) and a line saying where it came from; seeds the RNGs. Shared by train, finetune, lr-find."""
    if isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    config = (config or TrainConfig()).updated(**overrides)
    if splits is not None:
        config = config.updated(data=splits.name)
    config.validate()
    t_load = time.perf_counter()
    data = splits if splits is not None else load_dataset(
        config.data, val_fraction=config.val_fraction, limit=config.limit, fraction=config.fraction,
        seed=config.seed, strict=config.strict)
    origin = "given in memory" if splits is not None else f"loaded in {time.perf_counter() - t_load:.1f}s"
    config = apply_recipe(config, data.name, data)
    config.validate()
    if config.tta:
        from ..data.augment import get_augment

        if not get_augment(config.augment or data.augment).flip:
            log("note: --tta mirrors the test images, but this run trains without flips; "
                "measured, that costs 2-3% accuracy (docs/training.md): use --no-tta or a *-flip --augment")
    seed_everything(config.seed, config.deterministic)
    return config, data, origin


def start_run(
    config: TrainConfig | dict | None,
    *,
    resume: str | Path | None = None,
    splits: DataSplits | None = None,
    log=print,
    **overrides: Any,
) -> tuple[TrainConfig, DataSplits, Path, torch.device]:
    """Resolve the config, load the data (or take `splits`), seed, pick the device and make (or find)
    the run directory, and take its lock (train/runlock.py; given back by the RunGuard the caller
    holds around the training: train/guard.py)."""
    log = distributed.main_only(log)  # [distributed] only rank 0 prints
    run_dir: Path | None = None
    try:
        if resume is not None:
            run_dir = find_run(resume)
            if distributed.is_main():  # [distributed] rank 0 writes the run, so rank 0 holds it
                runlock.acquire(run_dir)  # a process still writing it: refused here, before anything is read
                stale = remove_temporaries(run_dir)  # the run is ours now: a killed writer's half files go
                if stale:
                    log(f"removed {len(stale)} temporary file(s) left by the stopped process: "
                        f"{', '.join(str(p.relative_to(run_dir)) for p in stale)}")
            if (run_dir / "summary.json").is_file():  # written last, when the test set has been evaluated
                raise ConfigError(f"{run_dir} has finished (its summary.json is written): there is nothing to "
                                  f"resume; `cnnkit evaluate {run_dir}` tests it again")
            config, overrides = TrainConfig.from_dict(read_yaml(run_dir / "config.yaml")), {}
            log(f"resuming {run_dir}")
        config, data, origin = prepare(config, splits=splits, log=log, **overrides)
        device = distributed.init(config.device)  # [distributed] = pick_device, + process group under torchrun
        if run_dir is None and distributed.is_main():  # [distributed] rank 0 makes it, the others get its path
            run_dir = new_run_dir(config.out, data.name, config.name)
            runlock.acquire(run_dir)
            write_yaml(run_dir / "config.yaml", config.to_dict())
            point_latest(run_dir)
        run_dir = distributed.broadcast_object(run_dir)
        config = distributed.scale_lr(config, log)  # [distributed] --scale-lr; config.yaml keeps the base lr
        log(f"{data.name}: {len(data.train):,} train / {len(data.val):,} val / {len(data.test):,} test images "
            f"of {'x'.join(map(str, data.input_shape))}, {data.num_classes} classes ({origin})")
        return config, data, run_dir, device
    except BaseException:
        if run_dir is not None:
            runlock.release(run_dir)  # no RunGuard holds the run yet to give it back
        raise


class MetricsWriter:
    """Rewrites metrics.csv from the history after every epoch (atomically, so resume-safe)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def on_epoch_end(self, trainer: Trainer, result) -> None:
        if distributed.is_main():  # [distributed] only rank 0 writes
            write_metrics(self.run_dir, trainer.state.history, trainer.task.metrics_columns)


def make_trainer(model: nn.Module, data: DataSplits, config: TrainConfig, device: torch.device,
                 run_dir: Path, *, live: bool | None = None, log=print, **trainer_kwargs: Any) -> Trainer:
    """A Trainer that saves best/ and last/ bundles, writes metrics.csv and prints progress."""

    def save(m: nn.Module, folder: Path) -> None:
        if distributed.is_main():  # [distributed] only rank 0 writes
            save_bundle(m, folder, bundle_meta(model, data, {"dataset": data.name}))

    printer = EpochPrinter(config.epochs, metric=get_task(data.task).metric_short, live=live if distributed.is_main() else False,
                           write=distributed.main_only(log))  # [distributed] rank 0 prints
    callbacks = [printer, MetricsWriter(run_dir)]
    if config.tensorboard and distributed.is_main():
        from .tensorboard import TensorBoardLogger

        callbacks.append(TensorBoardLogger(run_dir, log=log))
    return Trainer(model, data, config, device, run_dir, callbacks=callbacks,
                   save_bundle=save, **trainer_kwargs)


def finish_run(trainer: Trainer, *, log=print, extra_summary: dict | None = None,
               sections: list[tuple[str, str]] = ()) -> RunResult:
    """Test the best weights (chosen on validation, never on test); write summary, plots, report."""
    data, config, run_dir, state = trainer.data, trainer.config, trainer.run_dir, trainer.state
    distributed.barrier()  # [distributed] rank 0 has written best/ before anyone reads it
    for callback in trainer.callbacks:  # e.g. TensorBoard's writer
        if hasattr(callback, "close"):
            callback.close()
    best, _ = load_bundle(run_dir / "best", device=trainer.device)
    if trainer.channels_last:
        best = best.to(memory_format=torch.channels_last)
    task, metric = trainer.task, trainer.task.metric
    test_loader = trainer.eval_loader(data.test)
    outputs, targets = trainer.predict(test_loader, model=best, tta=bool(config.tta))
    test_fields = task.test_summary(outputs, targets)  # test_<metric>, test_loss, any others
    no_tta = {}
    if config.tta:  # say what the flips added
        plain, _ = trainer.predict(test_loader, model=best)
        no_tta = {"tta": True, f"test_{metric}_no_tta": task.test_summary(plain, targets)[f"test_{metric}"]}
    trained_images = sum(h["images_per_second"] * h["seconds"] for h in state.history)
    summary = {
        f"test_{metric}": test_fields.pop(f"test_{metric}"),
        f"best_val_{metric}": round(state.best_val_score, 6),
        "test_loss": test_fields.pop("test_loss"),
        **test_fields,
        "epochs": state.epoch,
        "train_seconds": round(state.train_seconds, 3),
        "images_per_second": round(trained_images / max(state.train_seconds, 1e-9), 1),
        "dataset": data.name,
        "task": task.name,
        "model": config.model,
        "parameters": count_parameters(trainer.model),
        "train_images": len(data.train),
        "val_images": len(data.val),
        "test_images": len(data.test),
        "skipped_files": len(data.skipped),
        "device": str(trainer.device),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "torch": torch.__version__,
        "seed": config.seed,
        "recipe": config.recipe,
        "best_epoch": state.best_epoch,
        "stopped_early": state.stopped_early,
        "amp": str(trainer.amp).replace("torch.", "") if trainer.amp is not None else "off",
        "channels_last": trainer.channels_last,
        **no_tta,
        **distributed.summary_fields(config),  # [distributed] processes, global batch size
        **(extra_summary or {}),
    }
    if not distributed.is_main():  # [distributed] test metrics are global; only rank 0 writes
        return RunResult(run_dir, summary)
    for folder in ("best", "last"):  # a bundle copied elsewhere still says what it is
        set_summary(run_dir / folder, summary)
    task.write_report(run_dir, summary, state.history, outputs, targets, data.class_names, sections=sections,
                      images=data.test.images if data.path == "tensor" else None,
                      lr_trace=state.lr_trace, steps_per_epoch=len(trainer.train_loader))
    write_json(run_dir / "summary.json", summary)  # last: its presence means the run is complete
    log(f"test {metric} {summary[f'test_{metric}']:.4f} (best val {state.best_val_score:.4f}); "
        f"{state.train_seconds:.1f}s training; results in {run_dir}")
    return RunResult(run_dir, summary)




def run_training(config: TrainConfig | dict | None = None, *, resume: str | Path | None = None,
                 live: bool | None = None, log=print, **overrides: Any) -> RunResult:
    """`cnnkit train`: start (or resume) a run, build the model, fit, test and write the run directory."""
    log = distributed.main_only(log)  # [distributed] only rank 0 prints
    config, data, run_dir, device = start_run(config, resume=resume, log=log, **overrides)
    with RunGuard(run_dir, "train", log=log) as guard:  # Ctrl-C, SIGTERM, full disk, OOM: train/guard.py
        try:
            model = create_model(config.model, input_shape=data.input_shape, num_classes=data.num_classes)
        except CnnkitError:
            if resume is None:
                discard_run_dir(run_dir)  # nothing was trained: leave no empty run behind
            raise
        log(f"model {config.model}: {count_parameters(model):,} parameters; device {device}; "
            f"run directory {run_dir}")
        trainer = make_trainer(model, data, config, device, run_dir, live=live, log=log)
        if resume is not None:
            trainer.resume()
            if distributed.is_main():  # a stop between checkpoint and CSV would leave a row out
                write_metrics(run_dir, trainer.state.history, trainer.task.metrics_columns)
            log(f"continuing after epoch {trainer.state.epoch}, step {trainer.state.step_in_epoch}")
        guard.watch(trainer)
        with distributed.supervise(trainer):  # [distributed] a lost peer -> TrainingError saying how to resume
            trainer.fit()
        return finish_run(trainer, log=log)


