"""The README and the manual: the README stays short and starts with the
two set-up commands, its links resolve (files and anchors, as GitHub
slugs headings), and the command-line reference the manual prints is the
parser's own. `mkdocs build --strict` (scripts/docs.sh, run by .ci/run)
checks the manual's own links, anchors, navigation and API objects."""

import importlib.util
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _slug(heading):
    """GitHub's anchor for a heading (also Python-Markdown's toc slug for
    the headings used here): lower case, punctuation dropped, spaces to
    hyphens."""
    text = re.sub(r"[`*_]", lambda m: "_" if m.group() == "_" else "",
                  heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(path):
    anchors, code = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            code = not code
        m = re.match(r"^#{1,6} (.*)", line)
        if m and not code:
            anchors.add(_slug(m.group(1)))
    return anchors


def _links(path):
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_readme_is_short_and_starts_with_the_two_commands():
    lines = README.read_text().splitlines()
    assert len(lines) <= 250, len(lines)
    assert lines[0] == "# keras_vae"
    block = lines[lines.index("```bash") + 1:lines.index("```")]
    assert [line.split("#")[0].strip() for line in block] == [
        "bash scripts/main.sh", "bash scripts/test.sh"]


def test_slugs_match_github():
    assert _slug("Which likelihood?") == "which-likelihood"
    assert _slug("The `keras-vae` command") == "the-keras-vae-command"
    assert _slug("model.fit against PyTorch and JAX (2026-12-02, 13:32 UTC)"
                 ) == "modelfit-against-pytorch-and-jax-2026-12-02-1332-utc"


@pytest.mark.parametrize("link", _links(README))
def test_readme_link_resolves(link):
    if re.match(r"https?://", link):
        return  # external: not checked offline
    target, _, anchor = link.partition("#")
    path = (README.parent / target) if target else README
    assert path.exists(), f"README links to {target}, which does not exist"
    if anchor:
        assert anchor in _anchors(path), (
            f"README links to {link}: no heading of {target or 'README'} "
            f"has the anchor #{anchor}")


def test_every_manual_page_is_in_the_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.relative_to(ROOT / "docs").as_posix()
             for p in (ROOT / "docs").rglob("*.md")}
    missing = [p for p in sorted(pages) if p not in nav]
    assert not missing, missing


def test_the_cli_reference_is_the_parsers_help():
    spec = importlib.util.spec_from_file_location(
        "_docs_hooks", ROOT / "docs" / "hooks.py")
    hooks = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hooks)
    text = hooks.cli_reference()
    from keras_vae import cli

    parser = cli.build_parser()
    sub = parser._subparsers._group_actions[0].choices
    assert set(sub) == {"train", "export", "serve-check", "evaluate"}
    for name, command in sub.items():
        assert f"keras-vae {name} --help" in text
        for action in command._actions:
            for option in action.option_strings:
                assert option in text, (name, option)
    assert "<!-- keras-vae help -->" in (ROOT / "docs" / "cli.md").read_text()
