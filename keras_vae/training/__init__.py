"""Training: what `fit` needs beyond the train step, a module each.

    schedules     KL weight schedules (warm-up, cyclical, constant)
    nan_guard     stop or skip on non-finite losses
    backup        BackupAndRestore: exact resume from a killed run
    images        TensorBoard images of reconstructions and samples
    options       the callbacks and option checks of `keras-vae train`
    threads       CPU thread pools
    optimizers    FusedAdam, Adam with one fused update per variable
    distribute    tf.distribute strategies, dtype policies, XLA choice

The callbacks are re-exported by `keras_vae.callbacks`, the path users
import them from (`kv.callbacks.LinearKLWarmup`, ...); `kv.threads`,
`kv.optimizers` and `kv.distribute` are these modules.
"""
