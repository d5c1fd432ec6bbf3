"""The guide's layers: the spec language, shape inference, models built from specs,
summaries, and the NumPy reference arithmetic of every layer."""

from .model import SpecNet
from .resnet import ResNetSmall
from .spec import (
    Activation,
    BatchNorm,
    Conv,
    Dense,
    Dropout,
    Flatten,
    GlobalPool,
    Layer,
    Pool,
    conv_output_size,
    from_yaml_list,
    infer_shapes,
    parse_spec,
    to_text,
    to_yaml_list,
)
from .summary import Summary, summarize

__all__ = [
    "Activation", "BatchNorm", "Conv", "Dense", "Dropout", "Flatten", "GlobalPool", "Layer",
    "Pool", "ResNetSmall", "SpecNet", "Summary", "conv_output_size", "from_yaml_list", "infer_shapes",
    "parse_spec", "summarize", "to_text", "to_yaml_list",
]
