"""Data: loaders, the training streams, input checks, binarization protocols.

    loaders     `load`, `load_binarized_mnist_splits`, `describe_protocol`
    protocols   `binarize_once`, `bernoulli_draw`, `BINARIZE_MODES`
    stream      `TrainingStream` (the one training stream; `GraphStream`
                and `make_step_dataset` are its two forms), `make_dataset`,
                `steps_per_epoch`, `training_stream`
    checks      the one rule every array of examples goes through

The names below are the public ones; `keras_vae.datasets` (the loaders,
protocols and `make_dataset`) and `keras_vae.resume` (the step-indexed
streams) are the paths scripts import them from.
"""

from keras_vae.data import checks  # noqa: F401
from keras_vae.data import loaders  # noqa: F401
from keras_vae.data import protocols  # noqa: F401
from keras_vae.data import stream  # noqa: F401
from keras_vae.data.loaders import CLASS_NAMES  # noqa: F401
from keras_vae.data.loaders import DATA_DIR_ENV  # noqa: F401
from keras_vae.data.loaders import DATASET_NAMES  # noqa: F401
from keras_vae.data.loaders import FASHION_MNIST_SYSTEM_DIR  # noqa: F401
from keras_vae.data.loaders import class_names  # noqa: F401
from keras_vae.data.loaders import describe_protocol  # noqa: F401
from keras_vae.data.loaders import load  # noqa: F401
from keras_vae.data.loaders import load_binarized_mnist_splits  # noqa: F401
from keras_vae.data.protocols import BINARIZE_MODES  # noqa: F401
from keras_vae.data.protocols import bernoulli_draw  # noqa: F401
from keras_vae.data.protocols import binarize_once  # noqa: F401
from keras_vae.data.stream import GraphStream  # noqa: F401
from keras_vae.data.stream import TrainingStream  # noqa: F401
from keras_vae.data.stream import index_batches  # noqa: F401
from keras_vae.data.stream import make_dataset  # noqa: F401
from keras_vae.data.stream import make_step_dataset  # noqa: F401
from keras_vae.data.stream import steps_per_epoch  # noqa: F401
from keras_vae.data.stream import training_stream  # noqa: F401

__all__ = [
    "BINARIZE_MODES",
    "CLASS_NAMES",
    "DATASET_NAMES",
    "DATA_DIR_ENV",
    "GraphStream",
    "TrainingStream",
    "bernoulli_draw",
    "binarize_once",
    "class_names",
    "describe_protocol",
    "load",
    "load_binarized_mnist_splits",
    "make_dataset",
    "make_step_dataset",
    "steps_per_epoch",
    "training_stream",
]
