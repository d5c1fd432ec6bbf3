"""The backbone interface: a backbone that declares its parts is asked; a plain module is read structurally."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from cnnkit.models.adapt import (
    BackboneAdapter,
    StructuralAdapter,
    TransferNet,
    adapt_in_channels,
    adapter,
    backbone_groups,
    first_conv,
    strip_classifier,
)


class FakeBackbone(BackboneAdapter, nn.Module):
    """Two convolutions and a classifier, with groups no structure would guess ("early", "late")."""

    def __init__(self, extra_groups: int = 0) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3)
        self.b = nn.Conv2d(4, 6, 3)
        self.extra = nn.ModuleList(nn.Linear(1, 1) for _ in range(extra_groups))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 9)
        self.asked: list[str] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.b(self.a(x))).flatten(1))

    def cnnkit_strip_classifier(self) -> tuple[int, str]:
        self.asked.append("strip")
        self.fc = nn.Identity()
        return 6, "the fake top"

    def cnnkit_groups(self) -> list[tuple[str, list[str]]]:
        self.asked.append("groups")
        extra = [(f"extra{i}", [f"extra.{i}.weight", f"extra.{i}.bias"]) for i in range(len(self.extra))]
        return [("early", ["a.weight", "a.bias"]), *extra, ("late", ["b.weight", "b.bias"])]

    def cnnkit_first_conv(self) -> tuple[str, nn.Conv2d]:
        self.asked.append("first_conv")
        return "b", self.b  # not the structural guess (a): the declared one is used


def test_a_declared_backbone_is_asked_for_its_parts():
    fake = FakeBackbone()
    assert adapter(fake) is fake
    assert first_conv(fake) == ("b", fake.b)
    assert strip_classifier(fake) == (6, "the fake top")
    net = TransferNet(fake, 6, 3)
    assert net.block_groups == ["early", "late", "head"]
    assert net.groups[0] == ("early", ["backbone.a.weight", "backbone.a.bias"])
    assert fake.asked == ["first_conv", "strip", "groups"]
    net.set_trainable(["late", "head"])
    assert not fake.a.weight.requires_grad and fake.b.weight.requires_grad
    assert net(torch.rand(2, 3, 8, 8)).shape == (2, 3)


def test_declared_groups_are_merged_to_six_at_most():
    groups = backbone_groups(FakeBackbone(extra_groups=8))  # 10 groups
    assert [name for name, _ in groups] == ["early..extra0", "extra1..extra2", "extra3..extra4",
                                            "extra5..extra6", "extra7..late"]


def test_a_plain_module_is_read_structurally():
    model = torchvision.models.resnet18(weights=None)
    assert isinstance(adapter(model), StructuralAdapter)
    assert first_conv(model)[0] == "conv1"
    assert adapt_in_channels(model, 1).startswith("first convolution conv1: 3 -> 1")
    assert strip_classifier(model) == (512, "fc")
    assert [name for name, _ in backbone_groups(model)] == ["stem", "layer1", "layer2", "layer3", "layer4"]
