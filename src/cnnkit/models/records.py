"""The typed records that cross module boundaries in models/: what a model is, and what a source loaded.

`ArchRecord` is how a model says what it is (`model.cnnkit_arch`): a bundle stores it as
the "architecture" of its cnnkit.json and `registry.rebuild` builds the model again from it.
Its `to_dict()` is that JSON, key for key; `from_dict()` reads every bundle written so far.

`PretrainedInfo` is what a pretrained source says about the network it built (timm's
`PretrainedCfg`, torchvision's `Weights.meta`): where the weights came from, the
normalisation and input size they were trained with, the names of the first convolution
and of the classifier. `TransferPlan` is what `build_transfer` made of it for the data:
the features the new head sees, the resize, the normalisation for the data's channels.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..errors import BundleError

Size = tuple[int, int]  # (H, W)


@dataclass(frozen=True)
class ArchRecord:
    """What a model is, in plain data: enough for `registry.rebuild` to build it again.

    `source` says who builds it: "spec" (a layer spec, `name` is the spec), "builtin" (a
    registered architecture), "transfer" (a pretrained backbone with a new head), or a
    registered source's prefix (`tv`, `timm`, ...). `kwargs` are the builder's keyword
    arguments, plain JSON data; None for a spec, whose record has no "kwargs" key at all.
    """

    source: str
    name: str
    kwargs: dict[str, Any] | None = None

    @classmethod
    def spec(cls, spec: str) -> ArchRecord:
        return cls("spec", spec)

    @classmethod
    def transfer(cls, name: str, *, base: dict[str, Any], in_chans: int, head: str | None,
                 resize: list[int] | None) -> ArchRecord:
        """A TransferNet: `base` says where the backbone comes from (pretrained.base_record, without "path")."""
        return cls("transfer", name, {"base": base, "in_chans": in_chans, "head": head, "resize": resize})

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored in cnnkit.json ("architecture"), unchanged since bundle version 1."""
        data: dict[str, Any] = {"source": self.source, "name": self.name}
        if self.kwargs is not None:
            data["kwargs"] = self.kwargs
        return data

    @classmethod
    def from_dict(cls, data: Any) -> ArchRecord:
        """The record of a cnnkit.json "architecture" (an ArchRecord passes through); BundleError if it is none."""
        if isinstance(data, ArchRecord):
            return data
        if not (isinstance(data, dict) and isinstance(data.get("source"), str) and isinstance(data.get("name"), str)
                and isinstance(data.get("kwargs", {}), dict)):
            raise BundleError(f"its architecture must be a record with a source and a name, not {data!r}")
        return cls(data["source"], data["name"], data.get("kwargs"))


@dataclass(frozen=True)
class PretrainedInfo:
    """What a source says about the network it built (each sources_* module's `build` returns one)."""

    loaded: str  # where the weights came from, one line for a person ("tv:resnet18 weights ... from PATH")
    mean: tuple[float, ...] | None = None  # normalisation of the weights' training data; None: the data's own
    std: tuple[float, ...] | None = None
    min_size: Size | None = None  # the smallest input it takes; smaller images are resized up to it
    recommended_size: Size | None = None  # the size the weights were trained at
    exact_size: bool = False  # it takes only min_size (a cnnkit spec model: dense layers sized for its input)
    crop_pct: float = 1.0  # photos were resized to recommended_size / crop_pct, then centre-cropped (224 of 256)
    url: str | None = None
    adapted_channels: str | None = None  # what was done to the first convolution for the data's channels
    rebuild_name: str | None = None  # the name a bundle rebuilds it under, when not the one asked for
    first_conv: str | None = None  # module names, as timm's PretrainedCfg has them
    classifier: str | None = None  # (build_transfer fills in what the adapter found, when a source declares none)

    def replace(self, **changes: Any) -> PretrainedInfo:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class TransferPlan:
    """What `build_transfer` did to a pretrained network for the data, beside the TransferNet itself."""

    pretrained: PretrainedInfo
    num_features: int  # the length of the feature vector the new head takes
    removed: str  # the classifier taken off the backbone
    resize: Size | None  # the batch is resized to this inside the model; None: kept as it is
    mean: tuple[float, ...] | None  # the weights' normalisation for the data's channels; None: the data's
    std: tuple[float, ...] | None

    @property
    def loaded(self) -> str:
        return self.pretrained.loaded

    @property
    def adapted_channels(self) -> str | None:
        return self.pretrained.adapted_channels

    @property
    def recommended_size(self) -> Size | None:
        return self.pretrained.recommended_size

    @property
    def exact_size(self) -> bool:
        return self.pretrained.exact_size
