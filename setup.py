"""Packaging for keras_vae."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(
    r'__version__ = "([^"]+)"', (HERE / "keras_vae" / "__init__.py").read_text()
).group(1)

setup(
    name="keras_vae",
    version=VERSION,
    description=(
        "Variational Autoencoders for Keras 3 (TensorFlow backend) with "
        "TensorFlow Probability likelihoods, honest log-likelihoods and "
        "TF Serving export."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_vae", "keras_vae.*"]),
    # The registry of the shipped models (names and SHA-256 hashes).
    package_data={"keras_vae": ["pretrained.json"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",  # the versions tested (keras_vae._keras_internals)
        # TFP refuses to import without tf-keras; the [tf] extra brings it.
        "tensorflow-probability[tf]>=0.25,<0.26",
        "numpy>=1.26,<3",
        "matplotlib>=3.8,<4",
        # tf.summary needs it: keras-vae train writes TensorBoard logs.
        "tensorboard>=2.21,<2.22",
    ],
    extras_require={
        "serving": ["tensorflow-serving-api>=2.21,<2.22"],
        "test": [
            "pytest>=8,<10",
            "tensorflow-serving-api>=2.21,<2.22",
        ],
        # The manual: mkdocs build --strict (mkdocs.yml, docs/).
        "docs": [
            "mkdocs>=1.6,<2",
            "mkdocs-material>=9.5,<10",
            "mkdocstrings[python]>=0.26,<2",
        ],
    },
    entry_points={"console_scripts": ["keras-vae=keras_vae.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
