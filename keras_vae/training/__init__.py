"""Training: KL schedules, the NaN guard, exact resumption, TensorBoard
images and the options of `keras-vae train`, a module each.

The public names are re-exported by `keras_vae.callbacks`, the path users
import them from (`kv.callbacks.LinearKLWarmup`, ...).
"""
