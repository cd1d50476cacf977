"""benchmarks/_common.update_results: how every benchmark script writes its
section of RESULTS.md."""

import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]
                       / "benchmarks"))
import _common  # noqa: E402

RESULTS = """# Benchmark results

## main job (2026-12-01, CPU only)

main text

## models_mnist_long

a longer name that starts like another section's

## models_mnist

old models text

## reproduce_iwae
old card
"""


def test_update_results_replaces_only_the_named_section(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(RESULTS)
    _common.update_results(path, "## models_mnist\n\nnew text\n",
                           "## models_mnist")
    new = path.read_text()
    assert "old models text" not in new and "new text" in new
    # The section with a longer name is not a match, the others stay, and
    # one blank line separates the new text from the next heading.
    assert "a longer name that starts like" in new
    assert "new text\n\n## reproduce_iwae\nold card\n" in new
    assert new.count("## ") == 4

    # A heading with a note after the name is the section; so is the last.
    _common.update_results(path, "## main job (2026-12-07)\n\nrerun\n",
                           "## main job")
    _common.update_results(path, "## reproduce_iwae\nnew card\n",
                           "## reproduce_iwae")
    new = path.read_text()
    assert "main text" not in new and "rerun\n\n## models_mnist_long" in new
    assert new.endswith("## reproduce_iwae\nnew card\n")


def test_update_results_appends_a_new_section_and_creates_the_file(
        tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(RESULTS)
    _common.update_results(path, "## models\n\nfresh\n", "## models")
    new = path.read_text()
    assert new.startswith(RESULTS.rstrip("\n"))  # nothing else changed
    assert new.endswith("old card\n\n## models\n\nfresh\n")

    created = tmp_path / "new" / "RESULTS.md"
    created.parent.mkdir()
    _common.update_results(created, "## a\n\nx\n", "## a")
    assert created.read_text() == "# Benchmark results\n\n## a\n\nx\n"
    assert not list(created.parent.glob("*.tmp"))


def test_update_results_refuses_a_section_that_is_not_a_heading(tmp_path):
    path = tmp_path / "RESULTS.md"
    path.write_text(RESULTS)
    with pytest.raises(ValueError, match="level-2 heading.*'models_mnist'"):
        _common.update_results(path, "text", "models_mnist")
    assert path.read_text() == RESULTS
