"""Recipes are typed and the one place a dataset's augmentation is stated (train/recipes.py)."""

from __future__ import annotations

import dataclasses

import pytest

from cnnkit.cli import main
from cnnkit.data import get_info, list_datasets
from cnnkit.data.augment import PRESETS
from cnnkit.data.catalog import DatasetInfo
from cnnkit.train.config import TrainConfig
from cnnkit.train.recipes import RECIPES, Recipe, augmentation, recipe_for


@pytest.mark.parametrize("record", [i for i in list_datasets() if i.trainable], ids=lambda i: i.name)
def test_every_trainable_dataset_has_its_augmentation_in_its_recipe(record):
    for level in RECIPES.get(record.name, {"default": None}):
        recipe = recipe_for(record.name, level, record.input_shape)
        assert isinstance(recipe, Recipe) and recipe.augment in PRESETS, (record.name, level)
        TrainConfig(**recipe.named()).validate()  # a recipe names only real, valid settings


def test_the_catalog_states_no_augmentation_and_info_shows_the_recipes(capsys):
    assert "augment" not in {f.name for f in dataclasses.fields(DatasetInfo)}
    assert augmentation("fashion-mnist") == {"default": "none", "best": "crop-flip-erase", "fast": "none"}
    assert main(["datasets", "info", "fashion-mnist"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "augmentation" in x)
    assert line.split()[1] == "none" and "--recipe best: crop-flip-erase" in line  # what training uses
    assert main(["datasets", "info", "svhn", "--json"]) == 0
    assert '"default": "crop4"' in capsys.readouterr().out


def test_digits_letters_and_signs_are_never_flipped():
    for name in ("mnist", "emnist-letters", "svhn", "gtsrb", "sign-language-mnist", "asl-alphabet"):
        for level, preset in augmentation(name, get_info(name).input_shape).items():
            assert not PRESETS[preset].flip, (name, level)
