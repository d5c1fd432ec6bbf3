"""The built-in architectures, each a small CNN that adapts to channels and classes.

Where an architecture is a plain stack of the guide's layers it is written as a
layer spec, so `cnnkit summary` and `cnnkit explain` see it layer by layer.
`cnnkit summary NAME --input CxHxW` shows any of them for a given image size.
"""

from __future__ import annotations

from ..nn.model import SpecNet
from ..nn.resnet import ResNetSmall
from .registry import register_model

# Two conv blocks with batch norm, then a dense layer: ~400k parameters on 28x28.
SIMPLE_CNN = "conv32-3-same,bn,relu,maxpool2,conv64-3-same,bn,relu,maxpool2,flatten,dropout0.25,dense128,relu"

# LeCun et al. 1998: two conv + average-pool stages and three dense layers, tanh throughout.
# The paper feeds 32x32 images; smaller ones (MNIST's 28x28) get 2 pixels of padding in the
# first conv, which gives the paper's 28x28 maps, so the dense part keeps its 400 inputs.
LENET5 = "conv6-5{pad},tanh,avgpool2,conv16-5,tanh,avgpool2,flatten,dense120,tanh,dense84,tanh"

# CNN Explainer's Tiny VGG (Wang et al. 2020): two blocks of conv-relu-conv-relu-maxpool with
# ten 3x3 filters each, valid padding, then one dense layer. Made to be looked at, not to win.
TINY_VGG = "conv10-3,relu,conv10-3,relu,maxpool2,conv10-3,relu,conv10-3,relu,maxpool2,flatten"


@register_model("simple-cnn", "two conv-bn-relu-pool blocks and a dense layer; the default", min_size=4)
def simple_cnn(*, input_shape, num_classes):
    return SpecNet(SIMPLE_CNN, input_shape, num_classes=num_classes)


@register_model("lenet5", "LeNet-5 (1998): conv6-5, avgpool, conv16-5, avgpool, dense120, dense84; tanh",
                min_size=12)
def lenet5(*, input_shape, num_classes):
    pad = "-p2" if min(input_shape[1:]) < 32 else ""
    return SpecNet(LENET5.format(pad=pad), input_shape, num_classes=num_classes)


@register_model("tiny-vgg", "CNN Explainer's Tiny VGG: (conv10-3, relu) x2, maxpool2, twice, then dense",
                min_size=16)
def tiny_vgg(*, input_shape, num_classes):
    return SpecNet(TINY_VGG, input_shape, num_classes=num_classes)


@register_model("resnet-small", "a small ResNet (3 residual stages, 315k params) for 28-32 px images",
                min_size=8)
def resnet_small(*, input_shape, num_classes, **kwargs):
    # The stem halves the image; from 64 px up (where 28-32 px layouts would waste compute on
    # big maps) a stride-2 first conv halves it once more, as ImageNet-style stems do.
    kwargs.setdefault("first_stride", 2 if min(input_shape[1:]) >= 64 else 1)
    return ResNetSmall(input_shape[0], num_classes, **kwargs)
