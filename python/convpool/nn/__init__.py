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
from .conv import Conv1d, Conv2d, Conv3d
from .conv_transpose import ConvTranspose2d
from .dense import Dense, Linear
from .dropout import Dropout
from .flatten import Flatten
from .inference import inference_mode, is_inference_mode
from .layer import Layer, ShapePreserving, UndeclaredGeometryError
from .losses import CrossEntropyLoss, MSELoss
from .optim import SGD, Adam, AdamW, Optimizer
from .parameter import Parameter
from .pooling import (
    AvgPool1d,
    AvgPool2d,
    AvgPool3d,
    ChannelPool,
    GlobalAvgPool1d,
    GlobalAvgPool2d,
    GlobalAvgPool3d,
    GlobalMaxPool1d,
    GlobalMaxPool2d,
    GlobalMaxPool3d,
    MaxPool1d,
    MaxPool2d,
    MaxPool3d,
)
from .receptive_field import ReceptiveField
from .schedulers import CosineAnnealingLR, LRScheduler, OneCycleLR, StepLR
from .sequential import Sequential
from .summary import Summary
from .training import EpochResult, History, evaluate, fit, predict, train_epoch
from .upsample import Upsample

__all__ = [
    "Adam",
    "AdamW",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "BatchNorm2d",
    "BestWeights",
    "ChannelPool",
    "Concat",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose2d",
    "CosineAnnealingLR",
    "CrossEntropyLoss",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "EpochResult",
    "Flatten",
    "GlobalAvgPool1d",
    "GlobalAvgPool2d",
    "GlobalAvgPool3d",
    "GlobalMaxPool1d",
    "GlobalMaxPool2d",
    "GlobalMaxPool3d",
    "Hardswish",
    "History",
    "Identity",
    "LRScheduler",
    "Layer",
    "Linear",
    "MSELoss",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "MaxUnpool2d",
    "OneCycleLR",
    "Optimizer",
    "Parameter",
    "ReLU",
    "ReLU6",
    "ReceptiveField",
    "Residual",
    "SGD",
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

