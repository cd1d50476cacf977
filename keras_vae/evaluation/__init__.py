"""Evaluation: log p(x), the gaps around the ELBO, and diagnostics.

The training loss is a bound. What papers report is log p(x), estimated by
importance sampling with the encoder's q(z|x) as proposal:

    log p(x) ~= log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x),  z_k ~ q(z|x),

the IWAE bound with K samples (Burda et al. 2016), which approaches log p(x)
from below as K grows. K = 5000 is the usual reporting protocol.

With log p(x) measured, the identity log p(x) = ELBO + KL(q(z|x) || p(z|x))
can be read off a trained model, and the gap split further (Cremer et al.
2018) into

    log p(x) - ELBO(q_encoder) = [log p(x) - ELBO(q*)]          approximation
                               + [ELBO(q*) - ELBO(q_encoder)]   amortization

where q* is the best Gaussian for each example on its own, found here by
`refine` (gradient ascent on that example's ELBO, decoder fixed).

Functions:
    log_likelihood   importance-sampled log p(x), chunked, with a stderr
    iwae_bound       the IWAE bound and the ELBO from the same K draws
    mean_vs_sample   E_q[log p(x|z)] (sampled) against log p(x|z_mean)
    active_units     Burda et al.'s covariance criterion per latent unit
    report           all of the above in one dict; format_report, write_report
    evaluate_run     `keras-vae evaluate RUN_DIR`: reload, evaluate, write
    refine           per-example optimisation of q (semi-amortized inference)
    map_estimate     z* = argmax p(x|z) p(z), for comparison (not a bound)
    amortization_gap the decomposition above, with the time of each route

Data passed to `log_prob` is scored by a head whose parameters do not
depend on that data: the "optimal" Gaussian scale is the one it held at the
end of training (the training test step re-fits it to each batch).

Modules of this package:
    results          the result types
    importance       log_likelihood, iwae_bound, the memory plan
    diagnostics      mean_vs_sample, active_units, is_mass_function
    report           report, format_report, write_report, evaluate_run
    amortization     refine, map_estimate, amortization_gap
"""

from keras_vae.evaluation._common import check_num_samples
from keras_vae.evaluation.amortization import amortization_gap
from keras_vae.evaluation.amortization import format_amortization
from keras_vae.evaluation.amortization import map_estimate
from keras_vae.evaluation.amortization import refine
from keras_vae.evaluation.diagnostics import ACTIVE_UNIT_THRESHOLD
from keras_vae.evaluation.diagnostics import active_units
from keras_vae.evaluation.diagnostics import is_mass_function
from keras_vae.evaluation.diagnostics import mean_vs_sample
from keras_vae.evaluation.importance import DEFAULT_MAX_VALUES
from keras_vae.evaluation.importance import iwae_bound
from keras_vae.evaluation.importance import log_likelihood
from keras_vae.evaluation.report import evaluate_run
from keras_vae.evaluation.report import format_report
from keras_vae.evaluation.report import layer_terms
from keras_vae.evaluation.report import report
from keras_vae.evaluation.report import write_report
from keras_vae.evaluation.results import IWAEResult
from keras_vae.evaluation.results import LogLikelihoodResult
from keras_vae.evaluation.results import MAPResult
from keras_vae.evaluation.results import RefineResult

__all__ = [
    "ACTIVE_UNIT_THRESHOLD",
    "DEFAULT_MAX_VALUES",
    "IWAEResult",
    "LogLikelihoodResult",
    "MAPResult",
    "RefineResult",
    "active_units",
    "amortization_gap",
    "check_num_samples",
    "evaluate_run",
    "format_amortization",
    "format_report",
    "layer_terms",
    "is_mass_function",
    "iwae_bound",
    "log_likelihood",
    "map_estimate",
    "mean_vs_sample",
    "refine",
    "report",
    "write_report",
]
