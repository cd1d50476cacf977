"""A quiet start for the `keras-vae` command.

Importing TensorFlow writes lines to stderr that no setting of
TF_CPP_MIN_LOG_LEVEL hides, because they are logged before absl's log is
initialised: the oneDNN notice, "Could not find cuda drivers", the CPU
feature notice. The first TensorFlow op adds a "failed call to cuInit" error
on machines without a GPU. A user of the command sees them before every
result and reads them as failures.

So when this process is the `keras-vae` command (the console script, or
`python -m keras_vae.cli`) and `--verbose` is not among its arguments,
`keras_vae/__init__.py` imports TensorFlow, Keras and TensorFlow Probability
through `quiet_import`: TF_CPP_MIN_LOG_LEVEL is set to 3 (errors that end
the program only), and what is written to file descriptor 2 during the
import is held back, and shown only if the import fails. A Python program
that imports keras_vae is never affected: its stderr and environment are
left as they are.

This module imports nothing heavy: it runs before TensorFlow is imported.
"""

import os
import sys
import tempfile

CLI_MODULE = "keras_vae.cli"
CLI_SCRIPT = "keras-vae"


def is_quiet_cli(argv=None, orig_argv=None):
    """True when the process is the `keras-vae` command run without
    `--verbose`.

    `argv` and `orig_argv` default to `sys.argv` and `sys.orig_argv`
    (while `python -m keras_vae.cli` imports the package, sys.argv[0] is
    "-m" and only sys.orig_argv names the module).
    """
    argv = list(sys.argv if argv is None else argv)
    orig_argv = list(getattr(sys, "orig_argv", []) if orig_argv is None
                     else orig_argv)
    script = bool(argv) and os.path.basename(argv[0]) == CLI_SCRIPT
    module = any(orig_argv[i:i + 2] == ["-m", CLI_MODULE]
                 for i in range(len(orig_argv)))
    if not (script or module):
        return False
    return "--verbose" not in (argv[1:] if script else orig_argv)


def quiet_import(modules):
    """Imports `modules` (names) with TensorFlow's C++ log at level 3 and
    file descriptor 2 held in a temporary file; if an import fails, what
    was held is written to stderr before the exception propagates.

    Modules already imported are not imported again, and nothing is held
    when all of them are.
    """
    if all(name in sys.modules for name in modules):
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        restored = False
        try:
            for name in modules:
                __import__(name)
        except BaseException:
            sys.stderr.flush()
            os.dup2(saved, 2)
            restored = True
            held.seek(0)
            sys.stderr.write(held.read().decode(errors="replace"))
            sys.stderr.flush()
            raise
        finally:
            if not restored:
                sys.stderr.flush()
                os.dup2(saved, 2)
            os.close(saved)
