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

On the 2-core CPU, 600 train steps of the MNIST MLP took 1.08 s instead of
1.20 s (`benchmarks/optimizer_step.py`; a plain gradient step, the least any
update can cost, 0.95 s), and a full `fit` epoch 1.29 s instead of 1.36 s
(benchmarks/RESULTS.md). `keras-vae train` uses it.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_vae")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose update is TensorFlow's fused
    `ResourceApplyAdam` kernel. Takes exactly Adam's arguments."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not hasattr(variable, "handle"):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        m = self._momentums[index]
        v = self._velocities[index]
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype), use_locking=False,
        )
