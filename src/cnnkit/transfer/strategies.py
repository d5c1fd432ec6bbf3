"""The transfer-learning strategies: which block groups train, at which learning rate, stage by stage.

A strategy is a plan of stages; each stage names the groups that train and the
learning rate of each (the rest are frozen: requires_grad=False, BatchNorm in
eval mode — see models/adapt.py). Groups run input to output: stem, stages...,
head. Discriminative learning rates grow geometrically from the first group
(`lr / lr_ratio`) to the head (`lr`), as fastai's `slice(lr/100, lr)`.

- feature-extractor: the backbone frozen, the new head trained (all epochs).
- freeze:           the first N groups (or up to a named group) frozen, the rest trained.
- full:             everything trained at one learning rate.
- gradual:          the head alone, then one more group unfrozen per stage (ULMFiT).
- fine-tune:        one epoch with the backbone frozen, then everything with
                    discriminative learning rates (fastai's `fine_tune`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data.dataset import DataSplits, ImageArrays
from ..errors import ConfigError
from ..train.optim import decay_split
from .options import STRATEGIES


@dataclass
class Stage:
    name: str
    epochs: int
    lrs: dict[str, float]  # trained group -> its peak learning rate; groups not named are frozen

    @property
    def trainable(self) -> list[str]:
        return list(self.lrs)


def discriminative(groups: list[str], lr: float, ratio: float) -> dict[str, float]:
    """lr / ratio for the first group, lr for the last, geometric in between."""
    n = len(groups)
    if n == 1:
        return {groups[0]: lr}
    return {g: lr / ratio ** ((n - 1 - i) / (n - 1)) for i, g in enumerate(groups)}


def resolve_freeze_until(groups: list[str], freeze_until: str | int | None) -> int:
    """How many groups (from the input side) `--freeze-until` freezes: a count or a group name (inclusive)."""
    backbone = groups[:-1]
    if freeze_until is None:
        return max(len(backbone) // 2, 1)
    text = str(freeze_until).strip()
    if text.lstrip("-").isdigit():
        n = int(text)
        if not 0 <= n <= len(backbone):
            raise ConfigError(f"--freeze-until {n}: the backbone has {len(backbone)} block groups ({backbone})")
        return n
    if text in backbone:
        return backbone.index(text) + 1
    import difflib

    close = difflib.get_close_matches(text, backbone, n=1)
    raise ConfigError(f"--freeze-until {text!r} is not a block group"
                      + (f"; did you mean {close[0]!r}?" if close else "") + f" The groups are {backbone}.")


def plan(strategy: str, groups: list[str], *, epochs: int, lr: float, lr_ratio: float = 100.0,
         freeze_until: str | int | None = None, freeze_epochs: int = 1) -> list[Stage]:
    """The stages of `strategy` for block groups `groups` (the last one is the head)."""
    if strategy not in STRATEGIES:
        import difflib

        close = difflib.get_close_matches(strategy, STRATEGIES, n=1)
        raise ConfigError(f"unknown strategy {strategy!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                          + f" Choose one of {', '.join(STRATEGIES)}.")
    if epochs < 1:
        raise ConfigError("--epochs must be at least 1")
    head = groups[-1]
    if strategy == "feature-extractor":
        return [Stage("head only (backbone frozen)", epochs, {head: lr})]
    if strategy == "full":
        return [Stage("all layers", epochs, {g: lr for g in groups})]
    if strategy == "freeze":
        n = resolve_freeze_until(groups, freeze_until)
        trained = groups[n:]
        return [Stage(f"first {n} group(s) frozen", epochs, {g: lr for g in trained})]
    if strategy == "fine-tune":
        frozen = min(freeze_epochs, epochs - 1) if epochs > 1 else 0
        stages = [Stage("head only (backbone frozen)", frozen, {head: lr})] if frozen else []
        # fastai: after the frozen epoch(s), everything at slice(lr/ratio, lr/2) ... halve the peak.
        stages.append(Stage("all layers, discriminative LRs", epochs - frozen, discriminative(groups, lr / 2, lr_ratio)))
        return stages
    # gradual: head, then one more group per stage, from the output side.
    n_stages = len(groups)
    per_stage = max(1, epochs // n_stages)
    stages = []
    for k in range(1, n_stages + 1):
        trained = groups[-k:]
        rates = discriminative(groups, lr, lr_ratio)
        name = "head only" if k == 1 else f"+ {trained[0]}"
        stages.append(Stage(name, per_stage, {g: rates[g] for g in trained}))
    leftover = epochs - per_stage * n_stages
    if leftover > 0:
        stages[-1].epochs += leftover
    return stages


def optimizer_groups(model, stage: Stage, weight_decay: float) -> list[dict]:
    """Optimizer parameter groups for a stage: per block group, weights decayed, norms and biases not."""
    params = dict(model.named_parameters())
    out = []
    for group, names in model.groups:
        if group not in stage.lrs:
            continue
        for part in decay_split([params[n] for n in names], weight_decay):
            if part["params"]:
                out.append({**part, "lr": stage.lrs[group], "block_group": group})
    return out


# --------------------------------------------------------------------------- few-shot data


def _pick(split: ImageArrays, classes: list[int], per_class: int | None, rng: np.random.Generator) -> ImageArrays:
    labels = split.labels.numpy()
    keep = []
    for c in classes:
        index = np.flatnonzero(labels == c)
        if per_class is not None:
            index = np.sort(rng.permutation(index)[:per_class])
        keep.append(index)
    index = np.sort(np.concatenate(keep))
    remap = torch.full((int(labels.max()) + 1,), -1, dtype=torch.long)
    remap[torch.tensor(classes)] = torch.arange(len(classes))
    sub = split.subset(index)
    return ImageArrays(sub.images, remap[sub.labels])


def select_classes(data: DataSplits, classes: list[int] | None = None, per_class: int | None = None,
                   seed: int = 0, val_per_class: int | None = None) -> DataSplits:
    """A copy of `data` with only `classes` (relabelled 0..k-1) and at most `per_class` training images each.

    The validation split gets `val_per_class` images per class (default: as many
    as training, since a real few-label task has no large validation set); the
    test split keeps every image of the chosen classes.
    """
    from dataclasses import replace

    classes = list(range(data.num_classes)) if classes is None else [int(c) for c in classes]
    bad = [c for c in classes if not 0 <= c < data.num_classes]
    if bad:
        raise ConfigError(f"--classes {bad}: {data.name} has classes 0..{data.num_classes - 1}")
    if per_class is not None and per_class < 1:
        raise ConfigError("--per-class must be at least 1")
    rng = np.random.default_rng(seed)
    val_n = val_per_class if val_per_class is not None else per_class
    return replace(
        data,
        train=_pick(data.train, classes, per_class, rng),
        val=_pick(data.val, classes, val_n, rng),
        test=_pick(data.test, classes, None, rng),
        class_names=[data.class_names[c] for c in classes],
    )


def parse_classes(text: str | None) -> list[int] | None:
    """'5-9' or '5,6,7' -> [5, 6, 7, ...]."""
    if not text:
        return None
    out: list[int] = []
    try:
        for part in str(text).split(","):
            a, _, b = part.strip().partition("-")
            out += list(range(int(a), int(b) + 1)) if b else [int(a)]
    except ValueError:
        raise ConfigError(f"--classes {text!r}: write class numbers like 5-9 or 0,2,4") from None
    return out
