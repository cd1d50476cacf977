"""Result types of the evaluation.

`LogLikelihoodResult` (log p(x) per example), `IWAEResult` (the IWAE bound
and the ELBO from the same draws), `RefineResult` (q optimised per example)
and `MAPResult` (z* = argmax p(x, z)), with their summaries.
"""

import dataclasses

import numpy as np


@dataclasses.dataclass
class LogLikelihoodResult:
    """Per-example log p(x) estimates (nats) and their summary.

    Attributes:
        values: numpy (N,) per-example estimates.
        num_samples: K importance samples per example.
        reconstruction: numpy (N,) E_q[log p(x|z)] averaged over the same K
            draws, or None.
        kl: numpy (N,) closed-form KL(q(z|x) || p(z)), or None.
        seconds: wall time of the estimate.
        mean: mean over examples.
        stderr: standard error of the mean across examples.
        elbo: reconstruction - kl per example (None without them).
    """

    values: np.ndarray
    num_samples: int
    reconstruction: np.ndarray = None
    kl: np.ndarray = None
    seconds: float = None

    @property
    def mean(self):
        return float(np.mean(self.values))

    @property
    def stderr(self):
        return _stderr(self.values)

    @property
    def elbo(self):
        if self.reconstruction is None or self.kl is None:
            return None
        return self.reconstruction - self.kl


@dataclasses.dataclass
class IWAEResult:
    """The IWAE bound and the ELBO computed from the same K draws.

    Attributes:
        iwae: (N,) L_K = log (1/K) sum_k w_k per example.
        elbo: (N,) (1/K) sum_k log w_k: the ELBO estimated from the same
            draws with a Monte-Carlo KL. Equal to `iwae` when K = 1, and
            never above it (Jensen's inequality holds draw by draw).
        elbo_analytic_kl: (N,) (1/K) sum_k log p(x|z_k) - KL(q || p(z)), the
            lower-variance estimator the train step reports.
        num_samples: K.
    """

    iwae: np.ndarray
    elbo: np.ndarray
    elbo_analytic_kl: np.ndarray
    num_samples: int

    @property
    def mean(self):
        return float(np.mean(self.iwae))


def _stderr(values):
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    return float(np.std(values, ddof=1) / np.sqrt(n)) if n > 1 else 0.0


def _summary(values):
    return {"mean": float(np.mean(values)), "stderr": _stderr(values)}


# -- amortization: per-example refinement and MAP ---------------------------
@dataclasses.dataclass
class RefineResult:
    """q(z|x) optimised per example, starting from the encoder.

    Attributes:
        params: tuple of numpy arrays (N, ...), the refined parameters of
            the model's posterior ((z_mean, z_log_var) for the diagonal
            Gaussian); pass it as `proposal=` to `log_likelihood`.
        elbo_initial: (N,) ELBO of the encoder's q (nats, `eval_samples`
            draws, closed-form KL).
        elbo_refined: (N,) ELBO of the refined q, same estimator.
        steps, learning_rate: the optimisation settings.
        seconds: wall time of the optimisation (excluding the evaluation of
            the ELBOs and the one-off tracing).
        z_mean, z_log_var: the two parameters of a diagonal Gaussian.
    """

    params: tuple
    elbo_initial: np.ndarray
    elbo_refined: np.ndarray
    steps: int
    learning_rate: float
    seconds: float

    @property
    def z_mean(self):
        return self.params[0]

    @property
    def z_log_var(self):
        return self.params[1]

    @property
    def seconds_per_example(self):
        return self.seconds / len(self.params[0])


@dataclasses.dataclass
class MAPResult:
    """z* = argmax_z log p(x|z) + log p(z) per example.

    Attributes:
        z: numpy (N, latent_dim).
        log_joint: (N,) log p(x, z*) = log p(x|z*) + log p(z*), nats.
        log_px_z: (N,) log p(x|z*).
        log_pz: (N,) log p(z*).
        seconds: wall time of the optimisation.
    """

    z: np.ndarray
    log_joint: np.ndarray
    log_px_z: np.ndarray
    log_pz: np.ndarray
    steps: int
    learning_rate: float
    seconds: float

    @property
    def seconds_per_example(self):
        return self.seconds / len(self.z)
