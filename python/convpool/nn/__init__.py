"""A thin layer API over convpool's kernels: build, inspect and train CNNs, from
LeNet-5 to ResNet-18 and MobileNetV2.

Layers are plain classes with ``forward`` / ``backward``; convolution and pooling call
the compiled kernels, dense layers NumPy's matmul. Layers hold named children, so
parameter names read like PyTorch's ``state_dict`` keys. See ``Layer.summary`` for the
shape / parameter / receptive-field table, ``fit`` for training and ``inference_mode``
for forward passes that keep nothing.
"""

from .activations import Hardswish, Identity, ReLU, ReLU6, Sigmoid, Softmax, Tanh
from .adaptive_pool import AdaptiveAvgPool2d, AdaptiveMaxPool2d, MaxUnpool2d
from .batchnorm import BatchNorm2d
from .callbacks import BestWeights, EarlyStopping
from .containers import Concat, Residual
from .conv import Conv2d
from .conv_transpose import ConvTranspose2d
from .dense import Dense, Linear
from .dropout import Dropout
from .flatten import Flatten
from .inference import inference_mode, is_inference_mode
from .layer import Layer, ShapePreserving, UndeclaredGeometryError
from .losses import CrossEntropyLoss, MSELoss
from .optim import SGD, Adam, AdamW, Optimizer
from .parameter import Parameter
from .pooling import AvgPool2d, ChannelPool, GlobalAvgPool2d, GlobalMaxPool2d, MaxPool2d
from .receptive_field import ReceptiveField
from .schedulers import CosineAnnealingLR, LRScheduler, OneCycleLR, StepLR
from .sequential import Sequential
from .summary import Summary
from .training import EpochResult, History, evaluate, fit, predict, train_epoch
from .upsample import Upsample

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool2d",
    "BatchNorm2d",
    "BestWeights",
    "ChannelPool",
    "Concat",
    "Conv2d",
    "ConvTranspose2d",
    "CosineAnnealingLR",
    "CrossEntropyLoss",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "EpochResult",
    "Flatten",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
    "Hardswish",
    "History",
    "Identity",
    "LRScheduler",
    "Layer",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "MaxUnpool2d",
    "OneCycleLR",
    "Optimizer",
    "Parameter",
    "ReLU",
    "ReLU6",
    "ReceptiveField",
    "Residual",
    "Sequential",
    "ShapePreserving",
    "Sigmoid",
    "Softmax",
    "StepLR",
    "Summary",
    "Tanh",
    "UndeclaredGeometryError",
    "Upsample",
    "evaluate",
    "fit",
    "inference_mode",
    "is_inference_mode",
    "predict",
    "train_epoch",
]

# 1-D and 3-D layers (layers_nd.py)
from . import layers_nd  # noqa: E402
from .layers_nd import *  # noqa: E402, F403

__all__ += layers_nd.__all__
