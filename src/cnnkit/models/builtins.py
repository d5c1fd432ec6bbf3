"""The built-in architectures, each a small CNN that adapts to channels and classes.

Where an architecture is a plain stack of the guide's layers it is written as a
layer spec, so `cnnkit summary` and `cnnkit explain` see it layer by layer.
"""

from __future__ import annotations

from ..nn.model import SpecNet
from .registry import register_model

# Two conv blocks with batch norm, then a dense layer: ~400k parameters on 28x28.
SIMPLE_CNN = "conv32-3-same,bn,relu,maxpool2,conv64-3-same,bn,relu,maxpool2,flatten,dropout0.25,dense128,relu"


@register_model("simple-cnn", "two conv-bn-relu-pool blocks and a dense layer; the default", min_size=4)
def simple_cnn(*, input_shape, num_classes):
    return SpecNet(SIMPLE_CNN, input_shape, num_classes=num_classes)
