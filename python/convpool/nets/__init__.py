"""Ready-made nets beyond LeNet: ResNet-18 and MobileNetV2 with torchvision's state-dict
keys, and a small U-Net. Exposed as ``convpool.models.resnet18`` etc."""

from .mobilenet import mobilenet_v2
from .resnet import resnet18
from .unet import unet

__all__ = ["mobilenet_v2", "resnet18", "unet"]
