"""A thin layer API over convpool's kernels: build, inspect and train the lecture's nets.

Layers are plain classes with ``forward`` / ``backward``; convolution and pooling call
the compiled kernels, dense layers NumPy's matmul. See ``Sequential.summary`` for the
shape / parameter / receptive-field table and ``fit`` for training.
"""

from .activations import ReLU, Sigmoid, Softmax, Tanh
from .conv import Conv2d
from .dense import Dense, Linear
from .dropout import Dropout
from .flatten import Flatten
from .layer import Layer
from .losses import CrossEntropyLoss, MSELoss
from .optim import SGD, Adam, Optimizer
from .parameter import Parameter
from .pooling import AvgPool2d, ChannelPool, GlobalAvgPool2d, GlobalMaxPool2d, MaxPool2d
from .receptive_field import ReceptiveField
from .sequential import Sequential
from .serialization import load, save
from .summary import Summary
from .training import EpochResult, History, evaluate, fit, predict, train_epoch

__all__ = [
    "SGD",
    "Adam",
    "AvgPool2d",
    "ChannelPool",
    "Conv2d",
    "CrossEntropyLoss",
    "Dense",
    "Dropout",
    "EpochResult",
    "Flatten",
    "GlobalAvgPool2d",
    "GlobalMaxPool2d",
    "History",
    "Layer",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "Optimizer",
    "Parameter",
    "ReLU",
    "ReceptiveField",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Summary",
    "Tanh",
    "evaluate",
    "fit",
    "load",
    "predict",
    "save",
    "train_epoch",
]

# 1-D and 3-D layers (layers_nd.py)
from . import layers_nd  # noqa: E402
from .layers_nd import *  # noqa: E402, F403

__all__ += layers_nd.__all__
