"""The options of `cnnkit finetune` besides the training ones: one dataclass, saved as the run's transfer.yaml.

Light on purpose (no torch): `cnnkit --help` derives the finetune flags from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from ..settings import setting

STRATEGIES = ("feature-extractor", "freeze", "full", "gradual", "fine-tune")


@dataclass
class TransferOptions:
    """The options of `cnnkit finetune` besides the training ones (saved as the run's transfer.yaml)."""

    model: str | None = setting(None, "tv:NAME, timm:NAME, hf-hub:ORG/NAME, hf:ORG/NAME, keras:NAME, "
                                      "kerashub:PRESET, a run directory or a bundle", metavar="MODEL_OR_RUN_OR_BUNDLE")
    strategy: str = setting("fine-tune", "how to freeze and unfreeze", choices=STRATEGIES)
    weights: str | None = setting(None, "imagenet (the default: the source's ImageNet weights; a run or bundle "
                                        "brings its own), none or random to start from scratch, a weights enum "
                                        "name, a .safetensors/.pth file or a run directory")
    head: str | None = setting(None, "extra head layers in the spec language, e.g. 'dense256,relu,dropout0.3'")
    freeze_until: str | None = setting(None, "freeze: first N block groups, or up to a group (inclusive)",
                                       metavar="LAYER_OR_N")
    freeze_epochs: int = setting(1, "fine-tune: epochs with the backbone frozen first", at_least=0)
    lr_ratio: float = setting(100.0, "discriminative LRs: the first block group trains at lr / this", above=0)
    classifier: str | None = setting(None, "feature-extractor: a scikit-learn classifier on cached embeddings "
                                           "instead of a trained head", choices=("logistic", "svm"))
    input_size: int | None = setting(None, "resize inputs to this square size, e.g. 224, what ImageNet "
                                           "weights saw (default: only what the model needs)", at_least=1)
    classes: str | None = setting(None, "keep only these classes of the data, e.g. 5-9 or 0,2,4")
    per_class: int | None = setting(None, "at most N labelled training images per class", at_least=1)

    def validate(self) -> None:
        """Choices and ranges from the fields (config.validate), then the rules between fields."""
        from ..train.config import validate

        validate(self)
        if self.classifier and self.strategy != "feature-extractor":
            raise ConfigError("--classifier fits a scikit-learn model on frozen features: use it with "
                              "--strategy feature-extractor")
        if self.classifier and self.head:
            raise ConfigError("--classifier replaces the head by a linear model; drop --head")
