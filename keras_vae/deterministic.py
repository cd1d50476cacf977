"""`DeterministicVAE`: the VAE trained with z = z_mean plugged in.

Why does a VAE sample z? This model answers by not doing it. Its train step
decodes z_mean instead of a draw from q(z|x), and minimises

    -log p(x | z_mean) + KL(q(z|x) || p(z)),

a deterministic autoencoder with the VAE's KL term as a regulariser. That
objective is not a bound on log p(x): the reconstruction term ignores the
spread of q, so nothing asks the decoder to decode the z that q actually
puts mass on, and nothing stops the KL from shrinking z_mean towards 0 while
the decoder scales it back up. (With z = z_mean the only gradient on
z_log_var comes from the KL, which pulls the variance to 1.)

Everything except the train step is the `VAE`'s: evaluation (`evaluate`,
`elbo`, `log_likelihood`, `keras_vae.evaluation`) samples z as usual, so the
numbers it reports are the honest ELBO and log p(x) of the model the
plug-in objective produced. In `fit`'s logs, "loss" is the plug-in
objective and "elbo" / "reconstruction_loss" are measured with a sampled z
on the same batch (without gradient), so the two can be compared as
training goes.

See examples/mean_vs_sample.py for the side-by-side comparison.
"""

import keras
import tensorflow as tf

from keras_vae import objectives
from keras_vae.vae import VAE


@keras.saving.register_keras_serializable(package="keras_vae")
class DeterministicVAE(VAE):
    """A `VAE` whose train step decodes z = z_mean (no reparameterized draw).

    Takes the `VAE` arguments; `objective` must be "elbo" and `num_samples`
    1 (there is nothing to average or weight without draws).

    Examples:
        >>> enc = kv.build_mlp_encoder((28, 28, 1), 20, (200,))
        >>> dec = kv.build_mlp_decoder(20, (28, 28, 1), (200,))
        >>> model = DeterministicVAE(enc, dec, likelihood="bernoulli")
        >>> model.compile("adam")
        >>> history = model.fit(x_train, epochs=2, verbose=0)
        >>> m = model.evaluate(x_test, return_dict=True, verbose=0)
        >>> round(m["elbo"], 3) == round(-m["reconstruction_loss"]
        ...                              - m["kl_loss"], 3)  # honest ELBO
        True
    """

    def __init__(self, encoder, decoder, likelihood="bernoulli",
                 num_samples=1, objective="elbo", **kwargs):
        if objective != "elbo":
            raise ValueError(
                "DeterministicVAE trains the plug-in objective "
                "-log p(x|z_mean) + KL; it has no IWAE form. Received: "
                f"objective={objective!r}. Use keras_vae.VAE for IWAE."
            )
        if num_samples != 1:
            raise ValueError(
                "DeterministicVAE decodes z_mean once per example, so "
                f"num_samples must be 1. Received: num_samples={num_samples!r}"
            )
        super().__init__(encoder, decoder, likelihood=likelihood,
                         num_samples=1, objective="elbo", **kwargs)

    def compute_terms(self, x, training=False, num_samples=None,
                      labels=None):
        """As `VAE.compute_terms`; with training=True the loss decodes
        z_mean, and the reported terms come from a sampled z."""
        if not training:
            return super().compute_terms(x, training=False,
                                         num_samples=num_samples,
                                         labels=labels)
        x = tf.cast(x, "float32")
        params = self.posterior_params(x, training=True, labels=labels)
        z_mean = self.posterior.mean(params)
        # Sampling adds the (beta-weighted) KL with add_loss; its draw is
        # used only to report the honest ELBO of this batch.
        z, log_qz = self.sampler(params, training=True, return_log_q=True)
        params_at_mean = self._decode_params(z_mean, training=True,
                                             labels=labels)
        self.likelihood.observe(params_at_mean, x)
        log_px_at_mean = self.likelihood.log_prob(
            params_at_mean, x, fit_to=x)  # (B,)
        loss = objectives.weighted_loss(log_px_at_mean, 0.0, self.losses)
        z = tf.stop_gradient(z)[None]
        log_px_z = tf.stop_gradient(
            self.log_px_z(x, z, training=True, fit_to=x,
                          labels=labels))  # (1, B)
        kl = self.kl_at(params, z, log_qz[None])
        return {
            "loss": loss,
            "reconstruction": objectives.expected_log_likelihood(log_px_z),
            "kl": kl,
            "elbo": objectives.elbo(log_px_z, tf.stop_gradient(kl)),
            "log_px_z": log_px_z,
            "reconstruction_at_mean": log_px_at_mean,
        }
