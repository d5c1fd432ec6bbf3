"""Per-dataset recipes: the model, epochs, batch size, augmentation and regularisation that work.

`cnnkit train --data NAME` fills every config field the user left as None from
the dataset's recipe; a flag the user gives always wins. A recipe is a typed
`Recipe` (the TrainConfig fields it may fill). The recipe is the one place a
dataset's augmentation is stated: every catalog dataset's recipe names its preset
(or gets one from `fallback`), and `cnnkit datasets info` shows it from here. Each dataset has a
`default` recipe (the tuned everyday one), and may have `best` (longer, for the
highest accuracy) and `fast` (a quick look); `--recipe best` picks one. A dataset
without its own recipe gets one from its image size (see `fallback`). Measured
results and the literature's numbers: docs/recipes.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .config import TrainConfig


@dataclass(frozen=True)
class Recipe:
    """The TrainConfig fields a recipe fills; None = not named here (DEFAULT's, or the config's)."""

    model: str | None = None  # registry name or layer spec
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None  # peak learning rate
    weight_decay: float | None = None
    label_smoothing: float | None = None
    augment: str | None = None  # augmentation preset (data.augment.PRESETS)
    ema: float | None = None  # weight EMA decay
    tta: bool | None = None  # flip test-time augmentation

    def named(self) -> dict:
        """The fields this recipe names."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def over(self, base: Recipe) -> Recipe:
        """`base` with what this recipe names put over it."""
        return dataclasses.replace(base, **self.named())

# Layer specs used by the recipes (the spec language of nn/spec.py).
# 28x28 grey, the Fashion-MNIST default: one conv at full resolution, two at 14x14, one at 7x7,
# batch norm, 2x2 max pooling after each stage, a dense classifier on the 3x3x128 map (~170k
# parameters). At bf16 + channels_last it trains at ~5k images/s on 2 CPU cores.
MID_28 = ("conv32-3-same,bn,relu,maxpool2,conv64-3-same,bn,relu,conv64-3-same,bn,relu,maxpool2,"
          "conv128-3-same,bn,relu,maxpool2,flatten,dropout0.3")
# One conv per stage: about 1.5x faster than MID_28, ~0.5% less accurate.
SMALL_28 = ("conv32-3-same,bn,relu,maxpool2,conv64-3-same,bn,relu,maxpool2,"
            "conv128-3-same,bn,relu,maxpool2,flatten,dropout0.25")
# VGG-style, two convs per stage and global average pooling (~0.5M parameters): the `best` recipe.
VGG_28 = ("conv64-3-same,bn,relu,conv64-3-same,bn,relu,maxpool2,conv128-3-same,bn,relu,conv128-3-same,bn,relu,"
          "maxpool2,conv256-3-same,bn,relu,maxpool2,gap,flatten,dropout0.2")
# Wider single-conv stages (used by larger 28x28 datasets such as Kuzushiji-49).
WIDE_28 = ("conv48-3-same,bn,relu,maxpool2,conv96-3-same,bn,relu,maxpool2,"
           "conv192-3-same,bn,relu,maxpool2,flatten,dropout0.3")
# VGG-style for 32x32 colour (CIFAR, SVHN, GTSRB): two convs per stage, global pooling.
VGG_32 = ("conv64-3-same,bn,relu,conv64-3-same,bn,relu,maxpool2,conv128-3-same,bn,relu,conv128-3-same,bn,relu,"
          "maxpool2,conv256-3-same,bn,relu,conv256-3-same,bn,relu,maxpool2,gap,flatten,dropout0.2")
# Larger images (64 px and up) from scratch: strided first conv, then VGG stages, global pooling.
VGG_LARGE = ("conv32-5-s2-same,bn,relu,maxpool2,conv64-3-same,bn,relu,maxpool2,conv128-3-same,bn,relu,maxpool2,"
             "conv256-3-same,bn,relu,maxpool2,gap,flatten,dropout0.3")

# Applied first; a recipe overrides what it names.
DEFAULT = Recipe(model="simple-cnn", epochs=10, batch_size=128, lr=3e-3, weight_decay=5e-4, label_smoothing=0.0,
                 tta=False)

RECIPES: dict[str, dict[str, Recipe]] = {
    # 1,257 training images of 8x8: small batches, many epochs, still only seconds.
    "digits": {"default": Recipe(epochs=20, batch_size=64, lr=3e-3, augment="none")},
    # Measured (docs/recipes.md): in 8-10 epochs no augmentation beats crop/flip by ~1% (augmentation
    # pays off only in longer runs: `best`); flip-TTA only helps a model trained with flips.
    "fashion-mnist": {
        "default": Recipe(model=MID_28, epochs=7, batch_size=256, lr=4e-3, weight_decay=5e-4,
                          label_smoothing=0.1, augment="none"),
        "best": Recipe(model=VGG_28, epochs=30, batch_size=128, lr=3e-3, weight_decay=5e-4,
                       label_smoothing=0.1, augment="crop-flip-erase", ema=0.999, tta=True),
        "fast": Recipe(model=SMALL_28, epochs=4, batch_size=256, lr=4e-3, label_smoothing=0.1, augment="none"),
    },
    "mnist": {
        "default": Recipe(model=SMALL_28, epochs=8, batch_size=256, lr=4e-3, augment="crop"),
        "best": Recipe(model=VGG_28, epochs=20, batch_size=128, lr=3e-3, augment="crop", ema=0.999),
    },
    "kmnist": {
        "default": Recipe(model=MID_28, epochs=10, batch_size=256, lr=4e-3, augment="crop", label_smoothing=0.1),
        "best": Recipe(model=VGG_28, epochs=30, batch_size=128, lr=3e-3, augment="crop", ema=0.999,
                       label_smoothing=0.1),
    },
    "kuzushiji-49": {"default": Recipe(model=WIDE_28, epochs=15, batch_size=256, lr=4e-3, augment="crop",
                                       label_smoothing=0.1)},
    "sign-language-mnist": {"default": Recipe(model=SMALL_28, epochs=10, batch_size=128, lr=3e-3, augment="crop")},
    "cifar-10": {
        "default": Recipe(model=VGG_32, epochs=30, batch_size=256, lr=4e-3, weight_decay=5e-4,
                          label_smoothing=0.1, augment="crop4-flip", tta=True),
        "best": Recipe(model=VGG_32, epochs=80, batch_size=128, lr=3e-3, weight_decay=5e-4,
                       label_smoothing=0.1, augment="crop4-flip-erase", ema=0.9995, tta=True),
    },
    "cifar-100": {"default": Recipe(model=VGG_32, epochs=60, batch_size=128, lr=3e-3, weight_decay=5e-4,
                                    label_smoothing=0.1, augment="crop4-flip", tta=True)},
    "cifar-100-coarse": {"default": Recipe(model=VGG_32, epochs=50, batch_size=128, lr=3e-3, weight_decay=5e-4,
                                           label_smoothing=0.1, augment="crop4-flip", tta=True)},
    # House numbers: never flip (a mirrored 2 is not a 2).
    "svhn": {"default": Recipe(model=VGG_32, epochs=15, batch_size=256, lr=3e-3, augment="crop4")},
    "svhn-extra": {"default": Recipe(model=VGG_32, epochs=5, batch_size=256, lr=3e-3, augment="crop4")},
    # Traffic signs: never flip (left turn vs right turn).
    "gtsrb": {"default": Recipe(model=VGG_32, epochs=15, batch_size=128, lr=3e-3, augment="crop")},
    "fer-2013": {"default": Recipe(model=VGG_LARGE, epochs=40, batch_size=128, lr=3e-3, label_smoothing=0.1,
                                   augment="crop4-flip", tta=True)},
    "stl-10": {"default": Recipe(model=VGG_LARGE, epochs=60, batch_size=64, lr=2e-3, label_smoothing=0.1,
                                 augment="crop12-flip", tta=True)},  # 12 px of 96
}


def fallback(input_shape: tuple[int, ...] | None) -> Recipe:
    """A recipe from the image size alone, for datasets (and folders) without their own."""
    if not input_shape:
        return Recipe()
    c, h, w = input_shape
    side = min(h, w)
    if side <= 16:  # tiny images: the default small CNN, many quick epochs
        return Recipe(epochs=20, batch_size=64)
    if side <= 28:
        return Recipe(model=SMALL_28, epochs=12, batch_size=256, lr=4e-3, augment="crop", label_smoothing=0.1)
    if side <= 48:
        return Recipe(model=VGG_32, epochs=30, batch_size=128, lr=3e-3, augment="crop", label_smoothing=0.1)
    return Recipe(model=VGG_LARGE, epochs=30, batch_size=64, lr=2e-3, augment="crop", label_smoothing=0.1)


def recipe_for(dataset_name: str, level: str = "default", input_shape: tuple[int, ...] | None = None) -> Recipe:
    """The full recipe for a dataset and level (DEFAULT, then fallback or the dataset's own)."""
    own = RECIPES.get(dataset_name)
    if own is None:
        return fallback(input_shape).over(DEFAULT)
    return own.get(level, own["default"]).over(DEFAULT)


def augmentation(dataset_name: str, input_shape: tuple[int, ...] | None = None) -> dict[str, str | None]:
    """{recipe level: augmentation preset} of a dataset: what training uses (None: the data's own)."""
    levels = RECIPES.get(dataset_name) or {"default": None}
    return {level: recipe_for(dataset_name, level, input_shape).augment for level in levels}


def apply_recipe(config: TrainConfig, dataset_name: str, data=None) -> TrainConfig:
    """Fill the None fields of `config` from the dataset's recipe at `config.recipe`.

    `data` (the DataSplits) gives the image size for datasets without a recipe of their own.
    """
    shape = tuple(data.input_shape) if data is not None else None
    recipe = recipe_for(dataset_name, getattr(config, "recipe", "default") or "default", shape)
    filled = {k: v for k, v in recipe.named().items() if getattr(config, k, None) is None}
    return config.updated(**filled)
