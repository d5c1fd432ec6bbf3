"""resnet-small: a small residual network for 28-32 px images (Fashion-MNIST, CIFAR, SVHN).

The shape is ResNet's (He et al., 2015) cut down for small images and a 2-core CPU:

    stem    conv3x3 -> bn -> relu at full resolution, then a stride-2 conv3x3 -> bn -> relu
    layer1  residual blocks at 1/2 resolution   (32 channels: 14 x 14 on a 28 x 28 image)
    layer2  residual blocks at 1/4 resolution   (64 channels:  7 x 7)
    layer3  residual blocks at 1/8 resolution   (128 channels: 4 x 4)
    head    global average pool -> dropout -> dense (the classifier)

A residual block is conv3x3 -> bn -> relu -> conv3x3 -> bn, added to its input
(through a 1x1 conv where the size or width changes), then relu: the shortcut
lets gradients reach the early layers, so the net trains fast and deep.

It follows the one model interface (timm's): `forward_features` (the last
feature map), `forward_head`, `num_features`, `get_classifier`,
`reset_classifier`; and `block_groups` names its children from input to
output (stem, layer1, layer2, layer3, head) so that transfer learning can
freeze and unfreeze it block by block.

This file needs only torch, so it can be read (and copied) on its own.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """conv (no bias: batch norm has its own) -> batch norm."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    )


class BasicBlock(nn.Module):
    """relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)), ResNet's basic block."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        # Where the block changes size or width, a 1x1 conv makes the input fit the sum.
        self.shortcut = conv_bn(cin, cout, 1, stride) if stride != 1 or cin != cout else nn.Identity()
        self.relu2 = nn.ReLU(inplace=True)
        nn.init.zeros_(self.bn2.weight)  # each block starts as the identity: faster, steadier start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class ResNetSmall(nn.Module):
    """A small ResNet. `widths`/`depths` are per stage; `stem_stride` 2 halves the image early.

    Args:
        in_channels: image channels (1 for grey, 3 for colour).
        num_classes: outputs of the classifier; 0 gives a model that returns features.
        widths: channels of layer1..layer3.
        depths: residual blocks in layer1..layer3.
        stem_width: channels of the full-resolution stem conv.
        stem_stride: 2 (default) works the residual stages at half resolution, 1 at full.
        first_stride: 2 halves the image in the very first conv too (for 64 px and up).
        dropout: before the classifier.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, *, widths=(32, 64, 128),
                 depths=(1, 1, 1), stem_width: int = 24, stem_stride: int = 2, first_stride: int = 1,
                 dropout: float = 0.1) -> None:
        super().__init__()
        stem = [nn.Conv2d(in_channels, stem_width, 3, stride=first_stride, padding=1, bias=False),
                nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True),
                nn.Conv2d(stem_width, widths[0], 3, stride=stem_stride, padding=1, bias=False),
                nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
        self.stem = nn.Sequential(*stem)
        cin = widths[0]
        for i, (width, depth) in enumerate(zip(widths, depths, strict=True), start=1):
            blocks = []
            for d in range(depth):
                blocks.append(BasicBlock(cin, width, stride=2 if (d == 0 and i > 1) else 1))
                cin = width
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.num_features = cin
        self.head = nn.Sequential()
        self.head.add_module("pool", nn.AdaptiveAvgPool2d(1))
        self.head.add_module("flatten", nn.Flatten())
        self.head.add_module("dropout", nn.Dropout(dropout))
        self.head.add_module("fc", nn.Linear(cin, num_classes) if num_classes else nn.Identity())
        self.block_groups = ["stem"] + [f"layer{i}" for i in range(1, len(widths) + 1)] + ["head"]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def num_classes(self) -> int:
        fc = self.head.fc
        return fc.out_features if isinstance(fc, nn.Linear) else 0

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map, N x num_features x h x w."""
        x = self.stem(x)
        for name in self.block_groups[1:-1]:
            x = getattr(self, name)(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Pool, dropout and classify; `pre_logits=True` stops before the classifier."""
        x = self.head.dropout(self.head.flatten(self.head.pool(x)))
        return x if pre_logits else self.head.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh classifier with `num_classes` outputs (0: none, the model returns features)."""
        self.head.fc = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()
