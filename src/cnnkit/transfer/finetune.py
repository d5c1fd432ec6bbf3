"""`cnnkit.finetune`: transfer a pretrained CNN to new data, in the guide's five steps.

1. Load a pretrained model (torchvision, timm / Hugging Face hub, a cnnkit run or bundle).
2. Freeze layers (which block groups, by the strategy; frozen BatchNorm stays in eval mode).
3. Add new layers (a head for the new classes, optional extra layers; channel and size adapters).
4. Train the new layers (the first stage).
5. Fine-tune (the later stages unfreeze more, with smaller learning rates for earlier layers).

Each step is printed as it happens and written into the run's `report.md`. The
run directory is the same as `cnnkit train`'s, so evaluate/predict/explain/export
work on it unchanged. `--classifier logistic|svm` replaces steps 4-5 by a
scikit-learn classifier on cached embeddings, folded into the head's dense layer.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from pathlib import Path
from typing import Any

from torch import nn

from ..data.dataset import DataSplits
from ..errors import CnnkitError, ConfigError, TrainingError
from ..fileio import write_yaml
from ..models.adapt import TransferNet
from ..models.bundle import save_bundle
from ..models.pretrained import base_record, build_transfer, transfer_weights
from ..settings import field_names
from ..train.checkpoint import read_checkpoint
from ..train.config import TrainConfig, dataclass_from_dict
from ..train.guard import RunGuard
from ..train.run import RunResult, bundle_meta, finish_run, make_trainer, prepare, start_run
from ..train.rundir import discard_run_dir, write_metrics
from ..train.trainer import EpochResult
from .features import embeddings, fit_sklearn_head, head_linear
from .options import TransferOptions
from .strategies import Stage, optimizer_groups, parse_classes, plan, select_classes

# --------------------------------------------------------------------------- reporting


def group_table(model: TransferNet, stage: Stage | None) -> str:
    """One row per block group: parameters, trained or frozen, learning rate, BatchNorm mode (as set now)."""
    params = dict(model.named_parameters())
    bns = {name: m for name, m in model.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}
    # A Keras backbone's BatchNormalization layers are not torch modules: it reports them itself.
    library_bns = getattr(model.backbone, "cnnkit_batchnorm_training", dict)()
    rows = ["| group | parameters | state | learning rate | BatchNorm |", "|---|---:|---|---:|---|"]
    for name, names in model.groups:
        count = sum(params[n].numel() for n in names)
        trained = stage is not None and name in stage.lrs
        modes = {"train" if m.training else "eval" for b, m in bns.items() if f"{b}.weight" in names}
        modes |= {"train" if t else "eval" for p, t in library_bns.items() if f"backbone.{p}" in names}
        bn = "/".join(sorted(modes)) + " mode" if modes else "-"
        lr = f"{stage.lrs[name]:.2e}" if trained else "-"
        rows.append(f"| {name} | {count:,} | {'trained' if trained else 'frozen'} | {lr} | {bn} |")
    return "\n".join(rows)


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters()) - trainable


# --------------------------------------------------------------------------- finetune


def finetune(
    model: str | None = None,
    data: str | DataSplits | None = None,
    *,
    options: TransferOptions | None = None,
    config: TrainConfig | dict | None = None,
    callbacks: list | None = None,
    resume: str | Path | None = None,
    live: bool | None = None,
    log=print,
    **settings: Any,
) -> RunResult:
    """Transfer a pretrained model to `data` with one of the five strategies; writes a run directory.

    `settings` are TransferOptions fields (strategy, weights, head, freeze_until, freeze_epochs,
    lr_ratio, classifier, input_size, classes, per_class: see transfer/options.py), applied over
    `options`, and TrainConfig fields (epochs, lr, ...), applied over `config` and the dataset's
    recipe. `data` is a dataset name, an image folder or DataSplits already in memory (default:
    the config's, digits); `callbacks` are added to the run's Trainer (`trainer.stage_name`
    names the stage it runs). `resume=RUN` continues a stopped run with its own transfer.yaml and
    config.yaml, from the stage and step of its last checkpoint (the other arguments are then
    not used).

    Examples:
        >>> import cnnkit
        >>> run = cnnkit.finetune("runs/fashion", "digits", strategy="gradual")   # doctest: +SKIP
        >>> run = cnnkit.finetune("tv:resnet18", "./photos", weights="imagenet")   # doctest: +SKIP
    """
    if resume is not None:
        return _resume(resume, callbacks=callbacks, live=live, log=log)
    options, overrides = transfer_options(model, options, settings)
    base_record(options.model)  # a wrong --model fails before a run directory is made
    if isinstance(data, DataSplits):  # data already in memory (a Python user's own, or a benchmark's subset)
        cfg, splits, run_dir, device = start_run(config, splits=data, log=log, model=options.model, **overrides)
    else:
        cfg, splits, run_dir, device = start_run(config, log=log, model=options.model, data=data, **overrides)
    with RunGuard(run_dir, "finetune", log=log) as guard:  # Ctrl-C, SIGTERM, full disk, OOM: train/guard.py
        write_yaml(run_dir / "transfer.yaml", dataclasses.asdict(options))
        return _transfer(options, cfg, splits, run_dir, device, guard, callbacks=callbacks, live=live, log=log)


def transfer_options(model: str | None, options: TransferOptions | None,
                     settings: dict[str, Any]) -> tuple[TransferOptions, dict[str, Any]]:
    """(`options` with the TransferOptions fields of `settings` and `model` applied, checked; the
    other settings, the training overrides)."""
    names = field_names(TransferOptions)
    changes = {k: v for k, v in settings.items() if k in names and v is not None}
    if model is not None:
        changes["model"] = str(model)
    if "freeze_until" in changes:
        changes["freeze_until"] = str(changes["freeze_until"])
    if "classes" in changes:  # stored as the indices they mean, e.g. "5-9" -> "5,6,7,8,9"
        classes = changes["classes"]
        class_list = parse_classes(classes) if isinstance(classes, str) else classes
        changes["classes"] = ",".join(map(str, class_list)) if class_list else None
    options = dataclasses.replace(options or TransferOptions(), **changes)
    if not options.model:
        raise ConfigError("finetune needs --model MODEL_OR_RUN_OR_BUNDLE (or --resume RUN)")
    options.validate()
    return options, {k: v for k, v in settings.items() if k not in names}


def _resume(resume: str | Path, *, callbacks, live, log) -> RunResult:
    """Continue a stopped finetune run: its options, config, data and the stage of its checkpoint."""
    from ..fileio import read_yaml
    from ..train.rundir import find_run

    folder = find_run(resume)
    if not (folder / "transfer.yaml").is_file():
        raise ConfigError(f"{folder} is not a finetune run (no transfer.yaml); `cnnkit train --resume` "
                          "continues a training run")
    options = dataclass_from_dict(TransferOptions, read_yaml(folder / "transfer.yaml"), str(folder / "transfer.yaml"))
    if options.classifier:
        raise ConfigError(f"{folder} fitted a scikit-learn classifier in one go: there is nothing to resume; "
                          "run the command again")
    cfg, splits, run_dir, device = start_run(None, resume=folder, log=log)
    with RunGuard(run_dir, "finetune", log=log) as guard:
        return _transfer(options, cfg, splits, run_dir, device, guard, callbacks=callbacks, live=live, log=log,
                         resume=True)


def _transfer(options: TransferOptions, cfg: TrainConfig, splits: DataSplits, run_dir: Path, device,
              guard: RunGuard, *, callbacks, live, log, resume: bool = False) -> RunResult:
    """Steps 1-5 on a prepared run: build the transfer model, train its stages (or fit a classifier)."""
    model, weights, head, input_size = options.model, options.weights, options.head, options.input_size
    strategy, classifier = options.strategy, options.classifier
    class_list = parse_classes(options.classes) if options.classes else None
    per_class = options.per_class
    if class_list or per_class:
        splits = select_classes(splits, class_list, per_class, seed=cfg.seed)
        log(f"kept classes {splits.class_names}: {len(splits.train):,} train / {len(splits.val):,} val / "
            f"{len(splits.test):,} test images")

    # Steps 1 and 3: load the pretrained network, take its classifier off, add what the data needs.
    try:
        net, info = build_transfer(str(model), input_shape=splits.input_shape, num_classes=splits.num_classes,
                                   weights=transfer_weights(str(model), weights), head=head, input_size=input_size)
        stages = plan(strategy, net.block_groups, epochs=cfg.epochs, lr=cfg.lr, lr_ratio=options.lr_ratio,
                      freeze_until=options.freeze_until, freeze_epochs=options.freeze_epochs)
    except CnnkitError:
        if not resume:
            discard_run_dir(run_dir)  # nothing was trained: leave no empty run behind
        raise
    if info.mean:
        splits = dataclasses.replace(splits, mean=info.mean, std=info.std)
    added = [f"new head `{net.head.spec}` for {splits.num_classes} classes on {info.num_features} features "
             f"(the old classifier `{info.removed}` removed)"]
    if info.adapted_channels:
        added.append(info.adapted_channels)
    if info.resize:
        added.append(f"resize {splits.input_shape[1]}x{splits.input_shape[2]} -> "
                     f"{info.resize[0]}x{info.resize[1]} on the batch, inside the model")
    if info.recommended_size and not info.exact_size and info.resize != info.recommended_size:
        added.append(f"(the weights were trained at {info.recommended_size[0]}x{info.recommended_size[1]}; "
                     f"--input-size {info.recommended_size[0]} matches them, at a cost in time)")
    norm = (f"normalised with the model's own mean {[round(v, 4) for v in splits.mean]} / std "
            f"{[round(v, 4) for v in splits.std]}" if info.mean else "normalised with the data's mean/std")
    steps: list[tuple[str, str]] = [
        ("Step 1: load the pretrained model", f"{info.loaded}; {norm}."),
        ("Step 3: add new layers", "\n".join(f"- {a}" for a in added)),
    ]
    log(f"step 1, load: {info.loaded}")
    for a in added:
        log(f"step 3, add: {a}")

    if classifier:
        result, stage_notes = _fit_classifier(net, splits, cfg, device, run_dir, classifier, live=live, log=log)
    else:
        result, stage_notes = _train_stages(net, splits, cfg, device, run_dir, stages, guard, live=live, log=log,
                                            callbacks=callbacks or [], resume=resume)
    steps[1:1] = [stage_notes[0]]
    steps += stage_notes[1:]
    trainable, frozen = parameter_counts(net)
    return finish_run(result, log=log, sections=steps,
                      extra_summary={"strategy": strategy + (f" ({classifier})" if classifier else ""),
                                     "pretrained": info.loaded, "transfer": dataclasses.asdict(options),
                                     "final_trainable_parameters": trainable, "final_frozen_parameters": frozen})


def finetune_summary(model: str | None = None, data: str | DataSplits | None = None, *,
                     options: TransferOptions | None = None, config: TrainConfig | dict | None = None,
                     log=print, **settings: Any) -> str:
    """The Keras-style summary (trainable vs frozen parameters per layer) at every stage of the strategy.

    Takes what `finetune` takes and starts up as it does (`prepare`: the config, the dataset's
    recipe, the data), so the stages, epochs and learning rates are the run's; builds the adapted
    model and trains nothing (`cnnkit finetune ... --summary`).
    """
    from ..nn.summary import summarize

    options, overrides = transfer_options(model, options, settings)
    base_record(options.model)
    if isinstance(data, DataSplits):
        cfg, splits, _ = prepare(config, splits=data, log=log, model=options.model, **overrides)
    else:
        cfg, splits, _ = prepare(config, log=log, model=options.model, data=data, **overrides)
    if options.classes or options.per_class:
        splits = select_classes(splits, parse_classes(options.classes) if options.classes else None,
                                options.per_class, seed=cfg.seed)
    net, info = build_transfer(options.model, input_shape=splits.input_shape, num_classes=splits.num_classes,
                               weights=transfer_weights(options.model, options.weights), head=options.head,
                               input_size=options.input_size)
    stages = plan(options.strategy, net.block_groups, epochs=cfg.epochs, lr=cfg.lr, lr_ratio=options.lr_ratio,
                  freeze_until=options.freeze_until, freeze_epochs=options.freeze_epochs)
    parts = [f"{info.loaded}; block groups: {', '.join(net.block_groups)}"]
    for i, stage in enumerate(stages, start=1):
        net.set_trainable(stage.trainable)
        net.train()
        parts.append(f"\n== stage {i}/{len(stages)}: {stage.name}, {stage.epochs} epoch(s) ==\n"
                     f"{group_table(net, stage)}\n\n{summarize(net, splits.input_shape).format()}")
    return "\n".join(parts)


def _stage_of_checkpoint(state: dict, ends: list[int]) -> int:
    """The stage a checkpoint was written in: the one holding its half-done epoch, or the one whose
    epoch it ended (`ends`: the epoch each stage ends after, run-wide)."""
    epoch = state["epoch"] if state["step_in_epoch"] else state["epoch"] - 1
    return next((i for i, end in enumerate(ends) if epoch < end), len(ends) - 1)


def _train_stages(net: TransferNet, data: DataSplits, cfg: TrainConfig, device, run_dir: Path,
                  stages: list[Stage], guard: RunGuard, *, live, log, callbacks: list,
                  resume: bool = False) -> tuple[Any, list[tuple[str, str]]]:
    """The stages as repeated fits of one Trainer (fastai's `fine_tune`): each stage freezes what it
    says, then `fit(stage.epochs, param_groups=...)` continues the same TrainState (epochs numbered
    run-wide, one history, one best score). With `resume`, the stages before the checkpoint's are
    skipped and its own continues from the checkpoint (weights, optimizer, schedule, step)."""
    groups = net.block_groups
    ends = list(itertools.accumulate(stage.epochs for stage in stages))
    checkpoint = read_checkpoint(run_dir / "last" / "checkpoint.pt") if resume else None  # read once
    if checkpoint is not None and "stage" in checkpoint["state"]:
        raise TrainingError(f"{run_dir} was checkpointed by an older cnnkit, which numbered epochs per stage; "
                            "it cannot be resumed by this one: run the finetune command again")
    first = _stage_of_checkpoint(checkpoint["state"], ends) if checkpoint else 0
    trainer = make_trainer(net, data, cfg.updated(epochs=ends[-1]), device, run_dir, live=live, log=log)
    trainer.callbacks += callbacks  # e.g. a test's probe of what is frozen at every step
    guard.watch(trainer)  # a signal during a stage's fit now finishes its step and checkpoints
    notes: list[tuple[str, str]] = []
    for i, stage in enumerate(stages):
        net.set_trainable(stage.trainable)
        net.train()
        table = group_table(net, stage)
        trainable, frozen = parameter_counts(net)
        frozen_groups = [g for g in groups if g not in stage.lrs]
        text = (f"Stage {i + 1}/{len(stages)} ({stage.name}), {stage.epochs} epoch(s): "
                f"{trainable:,} trainable / {frozen:,} frozen parameters; frozen groups: "
                f"{', '.join(frozen_groups) or 'none'}.\n\n{table}")
        if i == 0:
            notes.append(("Step 2: freeze layers", text))
            notes.append(("Step 4: train the new layers", f"Stage 1 trains {', '.join(stage.trainable)}."))
        else:
            notes.append((f"Step 5: fine-tune, stage {i + 1}", text))
        if i < first:
            log(f"stage {i + 1}/{len(stages)} ({stage.name}): done before the interruption")
            continue
        log(f"{'step 2/4' if i == 0 else 'step 5'}, stage {i + 1}/{len(stages)} ({stage.name}): "
            f"{stage.epochs} epoch(s), {trainable:,} trainable / {frozen:,} frozen parameters")
        for line in table.splitlines()[2:]:
            log("  " + line.strip("| ").replace(" | ", "  "))
        param_groups = optimizer_groups(net, stage, cfg.weight_decay or 0.0)
        if checkpoint is not None and i == first:
            trainer.start_stage(stage.epochs, param_groups, start=ends[i] - stage.epochs, name=stage.name)
            trainer.resume(checkpoint)  # this stage's weights, optimizer, schedule, step and the history so far
            write_metrics(run_dir, trainer.state.history, trainer.task.metrics_columns)  # the stop may have
            # come between the checkpoint and the CSV
            log(f"continuing stage {i + 1} after epoch {trainer.state.epoch}, step {trainer.state.step_in_epoch}")
            trainer.fit()
        else:
            trainer.fit(stage.epochs, param_groups=param_groups, stage=stage.name)
    return trainer, notes


def _fit_classifier(net: TransferNet, data: DataSplits, cfg: TrainConfig, device, run_dir: Path, kind: str,
                    *, live, log) -> tuple[Any, list[tuple[str, str]]]:
    net.set_trainable(["head"])
    net.to(device)
    tic = time.perf_counter()
    emb = embeddings(net, data, device, log=log)
    val_accuracy = fit_sklearn_head(net, emb, kind, cfg.seed)
    elapsed = time.perf_counter() - tic
    trainable, frozen = parameter_counts(net)
    trainer = make_trainer(net, data, cfg.updated(epochs=1), device, run_dir, live=live, log=log)
    linear = head_linear(net)
    x_train = emb["train_x"] @ linear.weight.detach().cpu().T + linear.bias.detach().cpu()
    train_accuracy = float((x_train.argmax(1) == emb["train_y"]).float().mean())
    trainer.state.history = [EpochResult(1, 0.0, math.nan, train_accuracy, math.nan, val_accuracy, elapsed,
                                         len(data.train) / max(elapsed, 1e-9), stage=kind).row()]
    trainer.state.epoch, trainer.state.best_val_score, trainer.state.train_seconds = 1, val_accuracy, elapsed
    for folder in ("best", "last"):
        save_bundle(net, run_dir / folder, bundle_meta(net, data, {"dataset": data.name}))
    log(f"step 4, {kind} on frozen features: train accuracy {train_accuracy:.4f}, val accuracy {val_accuracy:.4f}")
    notes = [("Step 2: freeze layers", f"The whole backbone is frozen ({frozen:,} parameters); features are "
                                       f"extracted once and cached.\n\n{group_table(net, None)}"),
             ("Step 4: train the new layers", f"A scikit-learn {kind} classifier on standardised "
              f"{net.num_features}-dimensional embeddings, folded into the head's dense layer "
              f"({trainable:,} parameters); val accuracy {val_accuracy:.4f}."),
             ("Step 5: fine-tune", "Not done with --classifier: the backbone stays as pretrained.")]
    return trainer, notes
