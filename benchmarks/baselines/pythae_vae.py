"""Baseline (b): Pythae 0.1.2 (PyTorch) VAE with the benchmark's two architectures.

Runs in the Pythae environment, not the project's (create it with
`bash benchmarks/setup_pythae_env.sh`):

    benchmarks/_envs/pythae/bin/python benchmarks/baselines/pythae_vae.py train --arch mlp --steps 600
    benchmarks/_envs/pythae/bin/python benchmarks/baselines/pythae_vae.py nll --arch mlp --num-images 20

Each prints one JSON line starting with BENCHMARK_RESULT on stdout (Pythae's
log and tqdm bars go to stderr).

`train` trains `pythae.models.VAE` with custom `BaseEncoder` / `BaseDecoder`
of the same layers as benchmarks/baselines/plain_keras_vae.py, through
Pythae's own `BaseTrainer` (what a Pythae user runs: its DataLoader over a
`BaseDataset`, Adam, the tqdm bar, the per-epoch best-model copy), batch 100,
on the same data (MNIST train, x / 255, Pythae's "bce" loss). Timing mirrors
the Keras side: a warm-up `train()` of `warmup_steps` steps on the model, then
a second trainer's `train()` of `steps` steps whose epoch loop is timed (from
the epoch's first step to its last step's end; the trainer's end-of-training
model save is not in it, its whole wall time is reported apart).

Differences forced by Pythae, stated because they matter for reading numbers:
- the decoder ends with a sigmoid: Pythae's "bce" loss is
  `F.binary_cross_entropy` on probabilities, there is no logits option;
- layout is channels-first (N, 1, 28, 28), PyTorch's native one;
- "same" padding with stride 2 is written padding=1 (+ output_padding=1 for
  the transposed convolutions): the same shapes and FLOPs as Keras.
Weights are initialised like Keras (xavier/glorot uniform, zero biases), so
the losses printed can be compared with the Keras ones; speed does not
depend on it.

`nll` times `VAE.get_nll(data, n_samples=K, batch_size=B)`, Pythae's
importance-sampled log-likelihood, which loops over the examples one at a
time (K / B forward passes of B copies of each example). It runs on a few
test images and extrapolates to the 10,000-image test set: the extrapolated
number is stated as such. The model is freshly initialised (the cost of
get_nll does not depend on the weights).
"""

import argparse
import pathlib
import sys
import tempfile
import time
import warnings
from importlib.metadata import version

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

warnings.filterwarnings("ignore")  # pydantic / torch deprecation chatter

from pythae.models import VAE, VAEConfig  # noqa: E402
from pythae.models.base.base_utils import ModelOutput  # noqa: E402
from pythae.models.nn import BaseDecoder, BaseEncoder  # noqa: E402
from pythae.data.datasets import BaseDataset  # noqa: E402
from pythae.trainers import BaseTrainer, BaseTrainerConfig  # noqa: E402
from pythae.trainers.training_callbacks import TrainingCallback  # noqa: E402

import _common  # noqa: E402

ARCHS = ("mlp", "conv")
LATENT_DIM = {"mlp": 50, "conv": 2}


class MLPEncoder(BaseEncoder):
    """784-200-200 tanh, then linear z_mean and z_log_var heads."""

    def __init__(self, latent_dim):
        BaseEncoder.__init__(self)
        self.net = nn.Sequential(
            nn.Flatten(), nn.Linear(784, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh()
        )
        self.z_mean = nn.Linear(200, latent_dim)
        self.z_log_var = nn.Linear(200, latent_dim)

    def forward(self, x):
        h = self.net(x)
        return ModelOutput(embedding=self.z_mean(h), log_covariance=self.z_log_var(h))


class MLPDecoder(BaseDecoder):
    """latent-200-200 tanh, then 784 Bernoulli means (sigmoid), as (N, 1, 28, 28)."""

    def __init__(self, latent_dim):
        BaseDecoder.__init__(self)
        self.net = nn.Sequential(
            nn.Linear(latent_dim, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh(),
            nn.Linear(200, 784), nn.Sigmoid(),
        )

    def forward(self, z):
        return ModelOutput(reconstruction=self.net(z).reshape(-1, 1, 28, 28))


class ConvEncoder(BaseEncoder):
    """keras.io encoder: Conv 32 s2, Conv 64 s2 (relu, 'same'), Dense 16 relu, heads."""

    def __init__(self, latent_dim):
        BaseEncoder.__init__(self)
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(),   # (N, 32, 14, 14)
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),  # (N, 64, 7, 7)
            nn.Flatten(), nn.Linear(7 * 7 * 64, 16), nn.ReLU(),
        )
        self.z_mean = nn.Linear(16, latent_dim)
        self.z_log_var = nn.Linear(16, latent_dim)

    def forward(self, x):
        h = self.net(x)
        return ModelOutput(embedding=self.z_mean(h), log_covariance=self.z_log_var(h))


class ConvDecoder(BaseDecoder):
    """keras.io decoder: Dense 7*7*64 relu, ConvT 64 s2, ConvT 32 s2 (relu), ConvT 1."""

    def __init__(self, latent_dim):
        BaseDecoder.__init__(self)
        self.dense = nn.Sequential(nn.Linear(latent_dim, 7 * 7 * 64), nn.ReLU())
        self.net = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),  # 14x14
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),  # 28x28
            nn.ConvTranspose2d(32, 1, 3, stride=1, padding=1), nn.Sigmoid(),
        )

    def forward(self, z):
        h = self.dense(z).reshape(-1, 64, 7, 7)
        return ModelOutput(reconstruction=self.net(h))


def _keras_like_init(module):
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.xavier_uniform_(module.weight)
        nn.init.zeros_(module.bias)


def build(arch, seed=1337):
    """A pythae VAE (reconstruction_loss="bce") with the custom networks for `arch`."""
    if arch not in ARCHS:
        raise ValueError(f"Unknown arch {arch!r}. Expected one of {list(ARCHS)}.")
    torch.manual_seed(seed)
    latent_dim = LATENT_DIM[arch]
    if arch == "mlp":
        encoder, decoder = MLPEncoder(latent_dim), MLPDecoder(latent_dim)
    else:
        encoder, decoder = ConvEncoder(latent_dim), ConvDecoder(latent_dim)
    encoder.apply(_keras_like_init)
    decoder.apply(_keras_like_init)
    config = VAEConfig(input_dim=(1, 28, 28), latent_dim=latent_dim, reconstruction_loss="bce")
    return VAE(model_config=config, encoder=encoder, decoder=decoder)


class StepTimer(TrainingCallback):
    """perf_counter() when an epoch's step loop starts and after every step."""

    def __init__(self):
        self.loop_begin = None
        self.step_end = []

    def on_train_step_begin(self, training_config, **kwargs):
        # BaseTrainer calls this once per epoch, before its loop over batches.
        self.loop_begin = time.perf_counter()

    def on_train_step_end(self, training_config, **kwargs):
        self.step_end.append(time.perf_counter())


def _train_once(model, x, batch_size, output_dir, seed):
    dataset = BaseDataset(torch.from_numpy(x), torch.zeros(len(x)))
    config = BaseTrainerConfig(
        output_dir=output_dir,
        per_device_train_batch_size=batch_size,
        num_epochs=1,
        learning_rate=1e-3,  # Adam, pythae's default optimizer
        seed=seed,
        no_cuda=True,
    )
    timer = StepTimer()
    trainer = BaseTrainer(model=model, train_dataset=dataset, training_config=config,
                          callbacks=[timer])
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    return timer, wall, trainer


def run_train(arch, steps=600, batch_size=100, warmup_steps=50, seed=1337, x=None):
    """Warm up, then time `steps` steps of Pythae's BaseTrainer; return the timing dict."""
    if x is None:
        x = _common.load_mnist_grey()
    x = np.ascontiguousarray(np.asarray(x, dtype="float32").reshape(-1, 1, 28, 28))
    if steps * batch_size > len(x):
        raise ValueError(
            f"steps * batch_size = {steps * batch_size} exceeds the {len(x)} examples."
        )
    model = build(arch, seed=seed)
    with tempfile.TemporaryDirectory(prefix="pythae_bench_") as tmp:
        _, warmup_wall, _ = _train_once(model, x[: warmup_steps * batch_size], batch_size,
                                        tmp, seed)
        with _common.ContentionMeter() as meter:
            timer, train_wall, trainer = _train_once(model, x[: steps * batch_size], batch_size,
                                                     tmp, seed + 1)
    if len(timer.step_end) != steps:
        raise RuntimeError(f"expected {steps} steps, the trainer ran {len(timer.step_end)}")
    loop_seconds = timer.step_end[-1] - timer.loop_begin
    result = _common.throughput(steps, batch_size, loop_seconds)
    # Final-epoch mean training loss, for comparison with the Keras runs.
    with torch.no_grad():
        model.eval()
        sample = torch.from_numpy(x[:1000])
        out = model({"data": sample})
    result.update(
        impl="pythae",
        arch=arch,
        latent_dim=LATENT_DIM[arch],
        batch_size=batch_size,
        warmup_steps=warmup_steps,
        warmup_seconds=warmup_wall,
        timed_train_wall_seconds=train_wall,
        others_cpu_fraction_timed=meter.others_cpu_fraction,
        final_metrics={
            "loss_first_1000_train": float(out.loss),
            "reconstruction_loss_first_1000_train": float(out.recon_loss),
            "kl_loss_first_1000_train": float(out.reg_loss),
        },
        num_params=sum(p.numel() for p in model.parameters()),
        peak_rss_mib=_common.peak_rss_mib(),
        versions=_versions(),
        threads={"torch_num_threads": torch.get_num_threads(),
                 "torch_interop_threads": torch.get_num_interop_threads()},
    )
    return result


def run_nll(arch, num_images=20, num_samples=5000, nll_batch_size=100, no_grad=False,
            seed=1337, x=None, full_size=10000):
    """Time Pythae's `get_nll` on `num_images` test images; extrapolate to `full_size`."""
    if x is None:
        x = _common.load_mnist_grey(split="test")
    data = torch.from_numpy(
        np.ascontiguousarray(np.asarray(x[:num_images], dtype="float32").reshape(-1, 1, 28, 28))
    )
    model = build(arch, seed=seed)
    model.eval()
    rss_before = _common.peak_rss_mib()
    # One image first: the first forward passes allocate; keep them out of the rate.
    model.get_nll(data[:1], n_samples=nll_batch_size, batch_size=nll_batch_size)
    t0 = time.perf_counter()
    with _common.ContentionMeter() as meter:
        if no_grad:
            with torch.no_grad():
                nll_value = model.get_nll(data, n_samples=num_samples, batch_size=nll_batch_size)
        else:
            nll_value = model.get_nll(data, n_samples=num_samples, batch_size=nll_batch_size)
    seconds = time.perf_counter() - t0
    samples_per_s = num_images * num_samples / seconds
    return {
        "impl": "pythae_get_nll" + ("_no_grad" if no_grad else ""),
        "arch": arch,
        "num_images": num_images,
        "num_samples": num_samples,
        "nll_batch_size": nll_batch_size,
        "torch_no_grad": no_grad,
        "seconds": seconds,
        "others_cpu_fraction_timed": meter.others_cpu_fraction,
        "importance_samples_per_s": samples_per_s,
        "extrapolated_full_size": full_size,
        "extrapolated_seconds_full": full_size * num_samples / samples_per_s,
        "mean_log_p_x_untrained": float(nll_value),
        "peak_rss_mib_before": rss_before,
        "peak_rss_mib": _common.peak_rss_mib(),
        "versions": _versions(),
        "threads": {"torch_num_threads": torch.get_num_threads()},
    }


def _versions():
    return {"torch": torch.__version__, "pythae": version("pythae"),
            "pydantic": version("pydantic"), "numpy": np.__version__}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="training throughput through BaseTrainer")
    train.add_argument("--arch", choices=ARCHS, default="mlp")
    train.add_argument("--steps", type=int, default=600)
    train.add_argument("--batch-size", type=int, default=100)
    train.add_argument("--warmup-steps", type=int, default=50)
    train.add_argument("--seed", type=int, default=1337)
    train.add_argument("--data", default=None, help="path to mnist.npz")
    nll = sub.add_parser("nll", help="get_nll importance-sampling throughput")
    nll.add_argument("--arch", choices=ARCHS, default="mlp")
    nll.add_argument("--num-images", type=int, default=20)
    nll.add_argument("--num-samples", type=int, default=5000, help="K importance samples")
    nll.add_argument("--nll-batch-size", type=int, default=100,
                     help="get_nll's batch_size (its default is 100)")
    nll.add_argument("--no-grad", action="store_true",
                     help="wrap get_nll in torch.no_grad() (get_nll itself does not)")
    nll.add_argument("--seed", type=int, default=1337)
    nll.add_argument("--data", default=None, help="path to mnist.npz")
    args = parser.parse_args(argv)

    if args.command == "train":
        result = run_train(args.arch, steps=args.steps, batch_size=args.batch_size,
                           warmup_steps=args.warmup_steps, seed=args.seed,
                           x=_common.load_mnist_grey(args.data))
    else:
        result = run_nll(args.arch, num_images=args.num_images, num_samples=args.num_samples,
                         nll_batch_size=args.nll_batch_size, no_grad=args.no_grad,
                         seed=args.seed, x=_common.load_mnist_grey(args.data, split="test"))
    _common.emit(result)


if __name__ == "__main__":
    main()
