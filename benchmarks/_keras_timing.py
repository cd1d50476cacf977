"""Timing of `model.fit`, shared by the plain-Keras baseline and keras_vae.

Both Keras implementations are timed the same way:

1. warm-up: one `fit` call of `warmup_steps` steps. It traces and compiles the
   train function and creates the optimizer's variables; it is not timed.
2. timed: a second `fit` call of `steps` steps, one epoch, on the same model,
   which reuses the compiled train function. The time is taken from the
   epoch's begin to its end (a callback), so it holds the steps and the
   per-epoch data iteration but not `fit`'s one-off set-up; the whole call's
   wall time is returned too.
"""

import time

import keras

from _common import ContentionMeter, throughput


#: Latent sizes of the two benchmark architectures: the IWAE paper's MLP
#: and the keras.io conv VAE.
LATENT_DIM = {"mlp": 50, "conv": 2}


def build_keras_vae(arch, seed):
    """The keras_vae model every benchmark times: 784-200-200-50 MLP or the
    keras.io conv VAE, Bernoulli decoder. keras_vae must be importable."""
    import keras_vae as kv

    if arch == "mlp":
        return kv.build_mlp_vae((28, 28, 1), LATENT_DIM["mlp"],
                                hidden_units=(200, 200),
                                likelihood="bernoulli", seed=seed)
    return kv.build_conv_vae((28, 28, 1), LATENT_DIM["conv"],
                             likelihood="bernoulli", seed=seed)


class EpochTimer(keras.callbacks.Callback):
    """Records perf_counter() at each epoch's begin and end (no batch hooks)."""

    def __init__(self):
        super().__init__()
        self.begin = []
        self.end = []

    def on_epoch_begin(self, epoch, logs=None):
        self.begin.append(time.perf_counter())

    def on_epoch_end(self, epoch, logs=None):
        self.end.append(time.perf_counter())


def timed_fit(model, warmup_fit, timed_fit_kwargs, steps, batch_size, verbose=0):
    """Warm up with `model.fit(**warmup_fit)`, then time `model.fit(**timed_fit_kwargs)`.

    verbose: passed to the timed `fit`; 0 by default so that the number is the
    training loop's, not the progress bar's (the bar is "auto" = 1 in a user's
    `fit` and costs a host sync and a terminal write per step).

    Returns a dict with the throughput of the timed epoch, the warm-up's wall
    time (compilation included) and the last logged metrics.
    """
    t0 = time.perf_counter()
    model.fit(verbose=0, **warmup_fit)
    warmup_s = time.perf_counter() - t0

    timer = EpochTimer()
    t0 = time.perf_counter()
    with ContentionMeter() as meter:
        history = model.fit(verbose=verbose, callbacks=[timer], **timed_fit_kwargs)
    fit_wall_s = time.perf_counter() - t0

    epoch_s = timer.end[0] - timer.begin[0]
    result = throughput(steps, batch_size, epoch_s)
    result.update(
        warmup_seconds=warmup_s,
        timed_fit_wall_seconds=fit_wall_s,
        others_cpu_fraction_timed=meter.others_cpu_fraction,
        final_metrics={k: float(v[-1]) for k, v in history.history.items()},
    )
    return result
