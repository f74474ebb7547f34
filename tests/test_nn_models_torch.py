"""ResNet-18 and MobileNetV2 against hand-written PyTorch twins that follow torchvision's
module structure line by line (torchvision itself is not needed): the same state-dict
keys, torchvision's state dicts load as they are, and the logits agree."""

from __future__ import annotations

import numpy as np
import pytest
from convpool import nn
from convpool.models import mobilenet_v2, resnet18

torch = pytest.importorskip("torch")
tnn = torch.nn

pytestmark = pytest.mark.torch


# --- torchvision's ResNet-18, as torchvision/models/resnet.py writes it --------------------
class BasicBlock(tnn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = tnn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = tnn.BatchNorm2d(planes)
        self.relu = tnn.ReLU(inplace=True)
        self.conv2 = tnn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = tnn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class TorchResNet18(tnn.Module):
    def __init__(self, num_classes=1000, in_channels=3, width=64):
        super().__init__()
        self.inplanes = width
        self.conv1 = tnn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = tnn.BatchNorm2d(width)
        self.relu = tnn.ReLU(inplace=True)
        self.maxpool = tnn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(width, 1)
        self.layer2 = self._make_layer(width * 2, 2)
        self.layer3 = self._make_layer(width * 4, 2)
        self.layer4 = self._make_layer(width * 8, 2)
        self.avgpool = tnn.AdaptiveAvgPool2d((1, 1))
        self.fc = tnn.Linear(width * 8, num_classes)

    def _make_layer(self, planes, stride):
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = tnn.Sequential(tnn.Conv2d(self.inplanes, planes, 1, stride, bias=False),
                                        tnn.BatchNorm2d(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers.append(BasicBlock(planes, planes))
        return tnn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


# --- torchvision's MobileNetV2, as torchvision/models/mobilenetv2.py writes it -------------
def _make_divisible(v, divisor=8):
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNReLU6(tnn.Sequential):
    def __init__(self, inp, out, kernel_size=3, stride=1, groups=1):
        super().__init__(tnn.Conv2d(inp, out, kernel_size, stride, (kernel_size - 1) // 2,
                                    groups=groups, bias=False),
                         tnn.BatchNorm2d(out), tnn.ReLU6(inplace=True))


class InvertedResidual(tnn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers = []
        if expand_ratio != 1:
            layers.append(ConvBNReLU6(inp, hidden, 1))
        layers += [ConvBNReLU6(hidden, hidden, 3, stride, groups=hidden),
                   tnn.Conv2d(hidden, oup, 1, bias=False), tnn.BatchNorm2d(oup)]
        self.conv = tnn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class TorchMobileNetV2(tnn.Module):
    def __init__(self, num_classes=1000, width_mult=1.0):
        super().__init__()
        settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                    [6, 160, 3, 2], [6, 320, 1, 1]]
        channels = _make_divisible(32 * width_mult)
        last = _make_divisible(1280 * max(1.0, width_mult))
        features = [ConvBNReLU6(3, channels, stride=2)]
        for t, c, n, s in settings:
            out = _make_divisible(c * width_mult)
            for i in range(n):
                features.append(InvertedResidual(channels, out, s if i == 0 else 1, t))
                channels = out
        features.append(ConvBNReLU6(channels, last, 1))
        self.features = tnn.Sequential(*features)
        self.classifier = tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(last, num_classes))

    def forward(self, x):
        x = tnn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


def _randomise_statistics(model: torch.nn.Module, seed: int) -> None:
    """Running statistics and batch-norm scales away from 0/1, so that eval mode matters."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, tnn.BatchNorm2d):
                n = module.num_features
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)
                module.num_batches_tracked.fill_(7)


def _numpy_state(model: torch.nn.Module) -> dict[str, np.ndarray]:
    return {key: value.detach().numpy() for key, value in model.state_dict().items()}


def _assert_logits_close(ours: np.ndarray, theirs: np.ndarray) -> None:
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("build, twin, shape", [
    (resnet18, TorchResNet18, (2, 3, 64, 64)),
    (mobilenet_v2, TorchMobileNetV2, (2, 3, 64, 64)),
], ids=["resnet18", "mobilenet_v2"])
def test_model_has_torchvisions_keys_and_matches_its_eval_logits(build, twin, shape):
    torch.manual_seed(0)
    theirs = twin(num_classes=10)
    _randomise_statistics(theirs, 1)
    theirs.eval()
    ours = build(10, seed=0)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for key, value in ours.state_dict().items():
        assert value.shape == tuple(theirs.state_dict()[key].shape), key
    ours.load_state_dict(_numpy_state(theirs))   # a torchvision state dict, as NumPy
    ours.eval()
    x = np.random.default_rng(2).standard_normal(shape).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.from_numpy(x)).numpy()
    _assert_logits_close(ours.forward(x), expected)
    with nn.inference_mode():                    # batch norm folded into the convolutions
        _assert_logits_close(ours.forward(x), expected)
    assert ours.num_parameters() == sum(p.numel() for p in theirs.parameters())


def test_resnet18_has_11_7_million_parameters_for_1000_classes():
    assert resnet18().num_parameters() == 11_689_512
    assert mobilenet_v2().num_parameters() == 3_504_872


def test_resnet_training_step_matches_pytorch():
    """Batch statistics, the running-statistics update and every parameter gradient."""
    torch.manual_seed(0)
    theirs = TorchResNet18(num_classes=5, in_channels=1, width=8).double()
    ours = resnet18(5, in_channels=1, width=8, dtype=np.float64, seed=0)
    ours.load_state_dict(_numpy_state(theirs))
    x = np.random.default_rng(3).standard_normal((3, 1, 32, 32))
    target = np.array([0, 3, 4])
    xt = torch.from_numpy(x)
    logits = theirs(xt)
    torch.nn.functional.cross_entropy(logits, torch.from_numpy(target)).backward()
    loss = nn.CrossEntropyLoss()
    output = ours.forward(x)
    loss(output, target)
    ours.zero_grad()
    ours.backward(loss.backward(), needs_input_grad=False)
    np.testing.assert_allclose(output, logits.detach().numpy(), rtol=1e-9, atol=1e-10)
    their_parameters = dict(theirs.named_parameters())
    for name, parameter in ours.named_parameters():
        np.testing.assert_allclose(parameter.grad, their_parameters[name].grad.numpy(),
                                   rtol=1e-7, atol=1e-9, err_msg=name)
    for key, value in ours.state_dict().items():
        np.testing.assert_allclose(value, theirs.state_dict()[key].numpy(), rtol=1e-9,
                                   atol=1e-12, err_msg=key)
