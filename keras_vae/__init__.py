"""keras_vae: Variational Autoencoders for Keras 3 on TensorFlow.

The Keras blog design (an encoder, a `Sampling` layer that adds the KL term
with `add_loss`, a decoder) made into a library: likelihoods are TensorFlow
Probability distributions, so every number is a log-likelihood in nats.
"""

__version__ = "0.1.0"

import sys as _sys

from keras_vae import _startup

if _startup.is_quiet_cli():
    # The `keras-vae` command without --verbose: no TensorFlow start-up
    # noise (keras_vae._startup says what and why).
    _startup.quiet_import(["tensorflow", "keras", "tensorflow_probability"])

import keras as _keras  # noqa: E402

if _keras.backend.backend() != "tensorflow":
    raise ImportError(
        "keras_vae needs the TensorFlow backend of Keras 3, but Keras is "
        f"running on the '{_keras.backend.backend()}' backend. Set "
        "KERAS_BACKEND=tensorflow before importing keras (or edit "
        "~/.keras/keras.json) and import keras_vae again."
    )

from keras_vae import callbacks  # noqa: E402
from keras_vae import data  # noqa: E402
from keras_vae import evaluation  # noqa: E402
from keras_vae import export  # noqa: E402
from keras_vae import likelihoods  # noqa: E402
from keras_vae import objectives  # noqa: E402
from keras_vae import posteriors  # noqa: E402
from keras_vae import pretrained  # noqa: E402
from keras_vae import priors  # noqa: E402
from keras_vae import progress  # noqa: E402
from keras_vae import serving  # noqa: E402
from keras_vae import training  # noqa: E402
from keras_vae.data import stream as _stream  # noqa: E402
from keras_vae.training import distribute  # noqa: E402
from keras_vae.training import optimizers  # noqa: E402
from keras_vae.training import threads  # noqa: E402
from keras_vae.export import export_saved_model  # noqa: E402
from keras_vae.networks import build_conv_decoder  # noqa: E402
from keras_vae.networks import build_conv_encoder  # noqa: E402
from keras_vae.networks import build_mlp_decoder  # noqa: E402
from keras_vae.networks import build_mlp_encoder  # noqa: E402
from keras_vae.sampling import Sampling  # noqa: E402
from keras_vae.vae import VAE  # noqa: E402
from keras_vae.vae import build_conv_vae  # noqa: E402
from keras_vae.vae import build_hierarchical_vae  # noqa: E402
from keras_vae.vae import build_mlp_vae  # noqa: E402
from keras_vae.deterministic import DeterministicVAE  # noqa: E402

# The import paths scripts use, kept as names of the modules where the code
# lives: `import keras_vae.resume` and `kv.resume` are the module
# keras_vae.data.stream itself (not a copy), so attributes set on one are
# set on the other.
datasets = data
resume = _stream
for _name, _module in (("datasets", data), ("resume", _stream),
                       ("distribute", distribute),
                       ("optimizers", optimizers), ("threads", threads)):
    _sys.modules[f"{__name__}.{_name}"] = _module
del _name, _module

__all__ = [
    "DeterministicVAE",
    "VAE",
    "Sampling",
    "build_conv_decoder",
    "build_conv_encoder",
    "build_conv_vae",
    "build_hierarchical_vae",
    "build_mlp_decoder",
    "build_mlp_encoder",
    "build_mlp_vae",
    "callbacks",
    "data",
    "datasets",
    "distribute",
    "evaluation",
    "export",
    "export_saved_model",
    "likelihoods",
    "objectives",
    "optimizers",
    "posteriors",
    "pretrained",
    "priors",
    "resume",
    "serving",
    "threads",
    "training",
]
