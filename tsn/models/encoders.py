"""ResNet encoders returning the five feature levels the U-Net decoder uses:
stem (H/2), layer1 (H/4), layer2 (H/8), layer3 (H/16), layer4 (H/32)."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torchvision.models import resnet

from tsn.errors import ConfigError
from tsn.io import read_torch
from tsn.registry import Registry

ENCODERS: Registry = Registry("encoder")

_TORCHVISION = {
    "resnet18": (resnet.resnet18, resnet.ResNet18_Weights.IMAGENET1K_V1),
    "resnet34": (resnet.resnet34, resnet.ResNet34_Weights.IMAGENET1K_V1),
    "resnet50": (resnet.resnet50, resnet.ResNet50_Weights.IMAGENET1K_V1),
}


class ResNetEncoder(nn.Module):
    def __init__(self, net: resnet.ResNet) -> None:
        super().__init__()
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        block = net.layer1[0]
        expansion = block.expansion
        w = [net.layer1[0].conv1.in_channels] + [
            layer[0].conv1.out_channels * expansion if hasattr(layer[0], "conv3") else layer[0].conv2.out_channels
            for layer in (net.layer1, net.layer2, net.layer3, net.layer4)
        ]
        self.channels: tuple[int, ...] = (net.conv1.out_channels, *w[1:])

    def forward(self, x: Tensor) -> list[Tensor]:
        f1 = self.relu(self.bn1(self.conv1(x)))
        f2 = self.layer1(self.maxpool(f1))
        f3 = self.layer2(f2)
        f4 = self.layer3(f3)
        f5 = self.layer4(f4)
        return [f1, f2, f3, f4, f5]


def _load_pretrained(net: nn.Module, name: str, pretrained: bool | str) -> None:
    if pretrained is True:
        weights = _TORCHVISION[name][1]
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights.url).name
        if not path.is_file():
            raise ConfigError(
                f"ImageNet weights for {name} are not in the torch cache and nothing is downloaded: "
                f"put {weights.url} at {path}, or set model.pretrained to a state-dict path or false"
            )
    else:
        path = Path(str(pretrained)).expanduser()
        if not path.is_file():
            raise ConfigError(f"model.pretrained: no state dict at {path}")
    state = read_torch(path, ConfigError, "the model.pretrained state dict", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = net.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ConfigError(f"model.pretrained: {path} does not fit {name} "
                          f"(missing {missing[:3]}..., unexpected {unexpected[:3]}...)")


def _make_resnet(name: str, pretrained: bool | str = False, width: int = 64) -> ResNetEncoder:
    if name not in _TORCHVISION:
        raise ConfigError(f"unknown encoder {name!r}; valid: {', '.join(_TORCHVISION)}")
    ctor, _ = _TORCHVISION[name]
    if width == 64:
        net = ctor(weights=None)
    else:
        if pretrained:
            raise ConfigError("model.encoder_width other than 64 has no pretrained weights; set model.pretrained false")
        net = _narrow_resnet(name, width)
    if pretrained:
        _load_pretrained(net, name, pretrained)
    return ResNetEncoder(net)


def _narrow_resnet(name: str, width: int) -> resnet.ResNet:
    """The same ResNet with every stage's width scaled by width/64 (for CPU-sized experiments)."""
    block = resnet.Bottleneck if name == "resnet50" else resnet.BasicBlock
    layers = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3], "resnet50": [3, 4, 6, 3]}[name]

    class Narrow(resnet.ResNet):
        def __init__(self) -> None:
            nn.Module.__init__(self)
            self._norm_layer = nn.BatchNorm2d
            self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
            self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
            self.bn1, self.relu = nn.BatchNorm2d(width), nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(block, width, layers[0])
            self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2)
            self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2)
            self.layer4 = self._make_layer(block, width * 8, layers[3], stride=2)
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    return Narrow()


for _name in _TORCHVISION:
    ENCODERS.register(_name)(lambda pretrained=False, width=64, _n=_name: _make_resnet(_n, pretrained, width))


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every BatchNorm2d by a FrozenBatchNorm2d holding its statistics
    and affine: no batch dependence, so results do not depend on how a batch
    is split over processes."""
    from torchvision.ops import FrozenBatchNorm2d

    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
                frozen.weight.copy_(child.weight.detach())
                frozen.bias.copy_(child.bias.detach())
                frozen.running_mean.copy_(child.running_mean)
                frozen.running_var.copy_(child.running_var)
                setattr(parent, name, frozen)
    return module


def build_encoder(name: str, pretrained: bool | str = False, width: int = 64, norm: str = "bn") -> ResNetEncoder:
    enc = ENCODERS.get(name)(pretrained=pretrained, width=width)
    if norm == "frozen_bn":
        freeze_batchnorm(enc)
    elif norm != "bn":
        raise ConfigError(f"model.encoder_norm: {norm!r} is not valid; valid: bn, frozen_bn")
    return enc


__all__ = ["ENCODERS", "ResNetEncoder", "build_encoder"]
