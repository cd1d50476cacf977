#!/usr/bin/env bash
# Builds the manual (docs/, mkdocs.yml) into site/ with --strict: a broken
# link, a missing anchor, a page left out of the navigation or an API
# object mkdocstrings cannot find fails the build. .ci/run runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh > /dev/null
. .venv/bin/activate
python -m pip install --quiet -e ".[docs]"
NO_MKDOCS_2_WARNING=1 mkdocs build --strict "$@"
