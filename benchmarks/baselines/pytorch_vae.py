"""Baseline (c): a plain PyTorch VAE and training loop, the pytorch/examples way.

Runs in the frameworks environment, not the project's (create it with
`bash benchmarks/setup_frameworks_env.sh`):

    benchmarks/_envs/frameworks/bin/python benchmarks/baselines/pytorch_vae.py --arch mlp
    benchmarks/_envs/frameworks/bin/python benchmarks/baselines/pytorch_vae.py --arch mlp \
        --loader slices

The reference is pytorch/examples' `vae/main.py`: an `nn.Module` with
`encode` / `reparameterize` / `decode`, a loss of binary cross-entropy plus
the Gaussian KL in closed form, and the loop

    for x in train_loader:
        optimizer.zero_grad(); loss = loss_function(model(x), x)
        loss.backward(); optimizer.step()

with `torch.optim.Adam(lr=1e-3)`. Nothing else is tuned: eager mode, the
default thread settings (`torch.get_num_threads()` = cores).

Two ways to feed batches (`--loader`):

- `dataloader` (default): `DataLoader(TensorDataset(x), batch_size=100,
  shuffle=True)`, what the example and most users write (the example wraps
  torchvision's MNIST; here the tensor is already in memory, which is faster).
- `slices`: a random permutation per epoch and `x[idx[i:i + 100]]`, no
  DataLoader at all: the fastest plain loop, for the fairest comparison.

The same architectures, data and objective as the Keras implementations
(benchmarks/baselines/plain_keras_vae.py): "mlp" 784-200-200-50 tanh,
"conv" the keras.io conv VAE (channels-first, padding=1 with
output_padding=1 for the stride-2 transposed convolutions: the same shapes
and FLOPs); MNIST training images as x / 255; the Bernoulli cross-entropy
from logits (`binary_cross_entropy_with_logits`; the example's sigmoid plus
`binary_cross_entropy` is the same number, less stable) summed over pixels,
plus KL, averaged over the batch; batch 100; Keras-like initialisation
(glorot uniform kernels, zero biases).

Timing: `warmup_steps` steps first (allocator, oneDNN primitive caches),
then `steps` steps timed from before the first batch is drawn to after the
last optimizer step (PyTorch on the CPU is synchronous). Prints one JSON
line starting with BENCHMARK_RESULT.
"""

import argparse
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import _common  # noqa: E402

ARCHS = ("mlp", "conv")
LATENT_DIM = {"mlp": 50, "conv": 2}
LOADERS = ("dataloader", "slices")


class VAE(nn.Module):
    """encode -> (mu, logvar); reparameterize; decode -> logits (N, 1, 28, 28)."""

    def __init__(self, arch):
        super().__init__()
        latent_dim = LATENT_DIM[arch]
        if arch == "mlp":
            self.encoder = nn.Sequential(
                nn.Flatten(), nn.Linear(784, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh())
            hidden = 200
            self.decoder = nn.Sequential(
                nn.Linear(latent_dim, 200), nn.Tanh(), nn.Linear(200, 200), nn.Tanh(),
                nn.Linear(200, 784), nn.Unflatten(1, (1, 28, 28)))
        else:
            self.encoder = nn.Sequential(
                nn.Conv2d(1, 32, 3, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
                nn.Flatten(), nn.Linear(7 * 7 * 64, 16), nn.ReLU())
            hidden = 16
            self.decoder = nn.Sequential(
                nn.Linear(latent_dim, 7 * 7 * 64), nn.ReLU(), nn.Unflatten(1, (64, 7, 7)),
                nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
                nn.ConvTranspose2d(32, 1, 3, stride=1, padding=1))
        self.fc_mu = nn.Linear(hidden, latent_dim)
        self.fc_logvar = nn.Linear(hidden, latent_dim)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def encode(self, x):
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        return mu + torch.randn_like(std) * std

    def forward(self, x):
        mu, logvar = self.encode(x)
        return self.decoder(self.reparameterize(mu, logvar)), mu, logvar


def loss_function(logits, x, mu, logvar):
    """Negative ELBO per example, averaged over the batch (nats)."""
    bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return (bce + kld) / x.shape[0]


def batches(x, batch_size, loader, generator):
    """An endless iterator of (batch_size, 1, 28, 28) tensors, epoch after epoch."""
    if loader == "dataloader":
        data = DataLoader(TensorDataset(x), batch_size=batch_size, shuffle=True,
                          drop_last=True, generator=generator)
        while True:
            for (batch,) in data:
                yield batch
    else:
        steps = len(x) // batch_size
        while True:
            idx = torch.randperm(len(x), generator=generator)
            for i in range(steps):
                yield x[idx[i * batch_size:(i + 1) * batch_size]]


def run_train(arch, steps=600, batch_size=100, warmup_steps=50, seed=1337, loader="dataloader",
              x=None):
    if arch not in ARCHS:
        raise ValueError(f"Unknown arch {arch!r}. Expected one of {list(ARCHS)}.")
    if loader not in LOADERS:
        raise ValueError(f"Unknown loader {loader!r}. Expected one of {list(LOADERS)}.")
    if x is None:
        x = _common.load_mnist_grey()
    x = torch.from_numpy(np.ascontiguousarray(x, dtype="float32").reshape(-1, 1, 28, 28))
    x = x[: steps * batch_size]
    if len(x) < steps * batch_size:
        raise ValueError(f"steps * batch_size = {steps * batch_size} exceeds the {len(x)} examples.")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = VAE(arch)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def train(num_steps, it):
        total = 0.0
        for _ in range(num_steps):
            batch = next(it)
            optimizer.zero_grad()
            logits, mu, logvar = model(batch)
            loss = loss_function(logits, batch, mu, logvar)
            loss.backward()
            optimizer.step()
            total += loss.item()  # the example logs train_loss += loss.item() every step
        return total / num_steps

    t0 = time.perf_counter()
    train(warmup_steps, batches(x[: warmup_steps * batch_size], batch_size, loader, generator))
    warmup_s = time.perf_counter() - t0
    it = batches(x, batch_size, loader, generator)
    with _common.ContentionMeter() as meter:
        t0 = time.perf_counter()
        mean_loss = train(steps, it)
        seconds = time.perf_counter() - t0
    result = _common.throughput(steps, batch_size, seconds)
    result.update(
        impl="pytorch" if loader == "dataloader" else "pytorch_slices",
        arch=arch, loader=loader, latent_dim=LATENT_DIM[arch], batch_size=batch_size,
        warmup_steps=warmup_steps, warmup_seconds=warmup_s,
        others_cpu_fraction_timed=meter.others_cpu_fraction,
        final_metrics={"loss": mean_loss},
        num_params=sum(p.numel() for p in model.parameters()),
        peak_rss_mib=_common.peak_rss_mib(),
        versions={"torch": torch.__version__, "numpy": np.__version__},
        threads={"torch_num_threads": torch.get_num_threads(),
                 "torch_interop_threads": torch.get_num_interop_threads()},
    )
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=ARCHS, default="mlp")
    parser.add_argument("--loader", choices=LOADERS, default="dataloader")
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--warmup-steps", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1337)
    parser.add_argument("--data", default=None, help="path to mnist.npz")
    args = parser.parse_args(argv)
    _common.emit(run_train(args.arch, steps=args.steps, batch_size=args.batch_size,
                           warmup_steps=args.warmup_steps, seed=args.seed, loader=args.loader,
                           x=_common.load_mnist_grey(args.data)))


if __name__ == "__main__":
    main()
