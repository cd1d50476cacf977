"""MkDocs hooks of the keras_vae manual (mkdocs.yml: hooks).

- The benchmark record lives once, in benchmarks/: RESULTS.md, README.md,
  their figures and requirement files are added to the site as they are,
  under benchmarks/, so their relative links hold there too.
- `<!-- keras-vae help -->` in a page becomes the help of every
  `keras-vae` command, printed by the parser itself
  (keras_vae.cli.build_parser), so the reference cannot drift from the
  code. cli.py is loaded on its own: its imports are the standard
  library's, and TensorFlow is not imported to build the docs.
"""

import argparse
import importlib.util
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
BENCHMARK_FILES = ["RESULTS.md", "README.md", "figures/*.png",
                   "requirements-*.txt"]
PLACEHOLDER = "<!-- keras-vae help -->"


def on_files(files, config):
    # Imported here: the test suite imports this module without mkdocs.
    from mkdocs.structure.files import File

    for pattern in BENCHMARK_FILES:
        for path in sorted((ROOT / "benchmarks").glob(pattern)):
            uri = path.relative_to(ROOT).as_posix()
            files.append(File(uri, str(ROOT), config["site_dir"],
                              config["use_directory_urls"]))
    return files


def _parser():
    spec = importlib.util.spec_from_file_location(
        "_keras_vae_cli_for_docs", ROOT / "keras_vae" / "cli.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_parser()


def cli_reference():
    """Markdown: `keras-vae --help`, then each command's --help."""
    parser = _parser()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    blocks = [("keras-vae --help", parser.format_help())]
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            blocks.append((f"keras-vae {name} --help", sub.format_help()))
    out = []
    for title, text in blocks:
        out.append(f"### `{title}`\n\n```text\n{text.rstrip()}\n```\n")
    return "\n".join(out)


def on_page_markdown(markdown, page, config, files):
    if PLACEHOLDER in markdown:
        markdown = markdown.replace(PLACEHOLDER, cli_reference())
    return markdown
