"""Progress output that suits where it goes.

On a terminal or in a notebook a live bar redraws one line with carriage
returns. In a log file (CI, `nohup`, `> run.log`) the same bar leaves one
line per update, all joined by `\\r`: thousands of them in a long run.
Keras' own test for a live display holds on every POSIX system, so it
cannot tell the two apart; the functions here look at stdout instead.

- `fit_verbose("auto")` is what `VAE.fit`, `VAE.evaluate` and `keras-vae
  train` pass to Keras: 1 (the live bar) where stdout is interactive, 2
  (one line per epoch) where it is not. An explicit 0, 1 or 2 is kept.
- `Progress` is the bar of keras_vae's own long loops (the K = 5000
  evaluation): `keras.utils.Progbar` where stdout is interactive, else a
  plain line at most every `interval` seconds and one at the end.

Examples:

>>> from keras_vae import progress
>>> import io, contextlib
>>> out = io.StringIO()
>>> with contextlib.redirect_stdout(out):
...     bar = progress.Progress(4, "scoring", interval=0)
...     for done in range(1, 5):
...         bar.update(done)
>>> "\\r" in out.getvalue()
False
>>> out.getvalue().splitlines()[-1].startswith("scoring: 4/4 batches (100%)")
True
"""

import numbers
import sys
import time

import keras

from keras_vae.data import checks


def interactive(stream=None):
    """True when `stream` (default: sys.stdout) redraws a line in place:
    a terminal, or a Jupyter/IPython kernel's output."""
    stream = sys.stdout if stream is None else stream
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        tty = False
    return tty or "ipykernel" in sys.modules


def fit_verbose(verbose):
    """Keras' `verbose` for `fit` and `evaluate`: "auto" becomes 1 (a live
    progress bar) where stdout is interactive and 2 (one line per epoch)
    where it is not; 0, 1 and 2 are returned unchanged."""
    if isinstance(verbose, str) and verbose == "auto":
        return 1 if interactive() else 2
    return verbose


class Progress:
    """Progress over `total` steps, reported as `update(done)` is called.

    Where stdout is interactive, a `keras.utils.Progbar`. Elsewhere a line
    "LABEL: DONE/TOTAL UNITs (P%), E s elapsed, about R s left" at most
    every `interval` seconds (and always at the last step), flushed at
    once so that `tail -f` shows it.

    Args:
        total: int > 0, the number of steps.
        label: str, what is being done ("K = 5000 evaluation").
        unit: str, the name of a step (default "batch").
        interval: float, seconds between plain lines (default 30).
    """

    def __init__(self, total, label, unit="batch", interval=30.0):
        if not checks.is_int(total):
            raise ValueError("Progress needs total, the number of steps, to "
                             f"be a whole number >= 1; received {total!r}. "
                             "Skip the progress report when there is "
                             "nothing to do.")
        if isinstance(interval, bool) or not isinstance(
                interval, numbers.Real) or not interval >= 0:
            raise ValueError("Progress needs interval, the seconds between "
                             f"plain lines, >= 0; received {interval!r}.")
        self.total = int(total)
        self.label = label
        self.unit = unit
        self.interval = float(interval)
        self._start = time.perf_counter()
        self._last_line = None
        self._bar = (keras.utils.Progbar(self.total, unit_name=unit)
                     if interactive() else None)

    def update(self, done):
        """Reports that `done` of the `total` steps are finished."""
        if self._bar is not None:
            self._bar.update(done)
            return
        now = time.perf_counter()
        last = done >= self.total
        if not last and self._last_line is not None and (
                now - self._last_line < self.interval):
            return
        self._last_line = now
        elapsed = now - self._start
        units = self.unit if self.total == 1 else _plural(self.unit)
        line = (f"{self.label}: {done}/{self.total} {units} "
                f"({100.0 * done / self.total:.0f}%), {elapsed:.0f} s "
                "elapsed")
        if not last and done > 0:
            line += f", about {elapsed * (self.total - done) / done:.0f} s left"
        print(line, flush=True)


def _plural(word):
    return word + ("es" if word.endswith(("s", "sh", "ch", "x")) else "s")
