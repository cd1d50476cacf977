"""`FusedAdam`: Keras' Adam with one fused kernel per variable.

Keras 3's `Adam.update_step` is written with backend-neutral ops: on the
TensorFlow backend that is about a dozen element-wise ops per variable
(casts, the two moment updates, the square root, the division, three
assignments), each a separate kernel launch that reads and writes the whole
tensor. TensorFlow has the same update as one kernel, `ResourceApplyAdam`,
which reads the variable, both moments and the gradient once and writes
them back once. `FusedAdam` is `keras.optimizers.Adam` with its
`update_step` replaced by that kernel: the same hyperparameters, the same
slot variables (so checkpoints and `BackupAndRestore` backups are
interchangeable with Adam's), the same arithmetic

    m <- beta_1 m + (1 - beta_1) g
    v <- beta_2 v + (1 - beta_2) g^2
    w <- w - lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

up to floating-point rounding. With `amsgrad=True`, or on a backend other
than TensorFlow, it falls back to Keras' own update.

On the 2-core CPU the fused update brought the MNIST MLP's step close to a
plain gradient step, the least any update can cost
(`benchmarks/optimizer_step.py`; the timings are in benchmarks/RESULTS.md,
optimizer_step), and computing the step's shared scalars once instead of
per variable saved a little more. With one thread
per op and two ops at once (`keras_vae.threads`, what `keras-vae train`
picks for the MLP there) Keras' element-wise Adam runs its per-variable ops
side by side and the fused kernel gains less.
`keras-vae train` uses it, and `VAE.compile` makes a plain
`keras.optimizers.Adam` one in place (`fuse_adam`; `fused_adam=False` keeps
Keras' Adam).
"""

import keras
import tensorflow as tf

from keras_vae import _keras_internals


@keras.saving.register_keras_serializable(package="keras_vae")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose update is TensorFlow's fused
    `ResourceApplyAdam` kernel. Takes exactly Adam's arguments.

    The scalars the kernel needs (beta_1^t, beta_2^t, the betas, epsilon)
    are computed once per `apply`, not once per variable: each would
    otherwise be a handful of tiny ops repeated for every weight, and on a
    small model those launches cost as much as the update itself. Only
    Keras' public optimizer hooks are overridden (`apply`, `update_step`).
    """

    def _adam_scalars(self, dtype):
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        return {
            "beta1_power": tf.pow(beta_1, step),
            "beta2_power": tf.pow(beta_2, step),
            "beta1": beta_1,
            "beta2": beta_2,
            "epsilon": tf.cast(self.epsilon, dtype),
        }

    def _fused_update(self, gradient, variable, learning_rate, scalars):
        dtype = variable.dtype
        if scalars is None or scalars["beta1"].dtype != dtype:
            scalars = self._adam_scalars(dtype)
        m, v = _keras_internals.adam_moments(self, variable)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=m.handle,
            v=v.handle,
            lr=tf.cast(learning_rate, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
            **scalars,
        )

    def apply(self, grads, trainable_variables=None):
        # A fresh cache of the shared scalars for each apply (each trace):
        # `update_step` fills it on its first call, for each dtype.
        self.__dict__["_keras_vae_scalars"] = {}
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self.__dict__["_keras_vae_scalars"] = None

    def _shared_scalars(self, dtype):
        cache = self.__dict__.get("_keras_vae_scalars")
        if cache is None:  # update_step called outside apply
            return self._adam_scalars(dtype)
        key = tf.as_dtype(dtype).name
        if key not in cache:
            cache[key] = self._adam_scalars(dtype)
        return cache[key]

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not hasattr(variable, "handle"):
            return super().update_step(gradient, variable, learning_rate)
        self._fused_update(gradient, variable, learning_rate,
                           self._shared_scalars(variable.dtype))


def fuse_adam(optimizer):
    """Makes a plain `keras.optimizers.Adam` a `FusedAdam`, in place.

    What `VAE.compile(fused_adam=True)` (the default) does: only an
    optimizer whose type is exactly Adam (also inside a
    `LossScaleOptimizer`) is changed, and it stays the same object, with
    its hyperparameters, slots and step count; its class becomes FusedAdam,
    which adds no state, so `get_config()` is unchanged and the model saves
    it as FusedAdam. Returns the optimizer.
    """
    inner = getattr(optimizer, "inner_optimizer", None)
    target = inner if inner is not None else optimizer
    if type(target) is keras.optimizers.Adam:
        target.__class__ = FusedAdam
    return optimizer
