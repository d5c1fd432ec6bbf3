"""Per-dataset defaults: the model, epochs, batch size and regularisation that work.

A flag the user gives always wins; a field left as None in TrainConfig comes from
here. Measured results are in docs/recipes.md.
"""

from __future__ import annotations

from .config import TrainConfig

DEFAULT = dict(model="simple-cnn", epochs=10, batch_size=128, lr=3e-3, weight_decay=5e-4, label_smoothing=0.0)

RECIPES: dict[str, dict] = {
    # 1,257 training images of 8x8: small batches, many epochs, still only seconds.
    "digits": dict(epochs=20, batch_size=64, lr=3e-3),
    "fashion-mnist": dict(epochs=8, batch_size=256, lr=4e-3, label_smoothing=0.1),
}


def apply_recipe(config: TrainConfig, dataset_name: str) -> TrainConfig:
    """Fill the None fields of `config` from the dataset's recipe."""
    recipe = {**DEFAULT, **RECIPES.get(dataset_name, {})}
    filled = {k: v for k, v in recipe.items() if getattr(config, k, None) is None}
    return config.updated(**filled)
