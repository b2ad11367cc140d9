"""docs/scenarios.md is true: every complete scenario on the page runs and
passes on a sandbox of its own; every excerpt is word for word in the file
it names (a file CI runs); the mistakes it shows are refused with exactly
the lines it shows. A YAML block that is none of these fails the test."""

from __future__ import annotations

import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.e2e.test_local_runtime import shopctl

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "scenarios.md"
RUN_IN_CI = (ROOT / "scenarios", ROOT / "tests" / "e2e" / "scenario_files")
_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.DOTALL)


def blocks() -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(PAGE.read_text())]


def complete_scenarios() -> list[str]:
    return [text for kind, text in blocks() if kind == "yaml" and text.startswith("name: ")]


def test_every_yaml_block_is_a_scenario_an_excerpt_or_a_shown_mistake():
    kinds = [
        "scenario"
        if text.startswith("name: ")
        else "excerpt"
        if text.startswith("# from ")
        else "mistake"
        if text.startswith("# mistake.yaml\n")
        else f"unchecked: {text[:60]!r}"
        for kind, text in blocks()
        if kind == "yaml"
    ]
    assert not [k for k in kinds if k.startswith("unchecked")], kinds
    assert kinds.count("scenario") >= 3 and kinds.count("excerpt") >= 10


def test_every_excerpt_is_word_for_word_in_a_file_ci_runs():
    for kind, text in blocks():
        if kind != "yaml" or not text.startswith("# from "):
            continue
        first, _, excerpt = text.partition("\n")
        source = ROOT / first.removeprefix("# from ").strip()
        assert source.exists(), first
        assert any(source.is_relative_to(folder) for folder in RUN_IN_CI), source
        assert excerpt in source.read_text(), f"{source.name} no longer holds:\n{excerpt}"


def test_the_mistakes_shown_are_refused_with_the_lines_shown(tmp_path):
    texts = [t for kind, t in blocks()]
    [index] = [i for i, t in enumerate(texts) if t.startswith("# mistake.yaml\n")]
    (tmp_path / "mistake.yaml").write_text(texts[index].partition("\n")[2])
    shown = texts[index + 1].splitlines()
    assert shown[0] == "$ shopctl scenario check mistake.yaml"
    result = shopctl({}, "scenario", "check", "mistake.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == shown[1:]


@pytest.mark.timeout(300)
def test_the_complete_scenarios_on_the_page_pass(sandbox_env, tmp_path):
    folder = tmp_path / "examples"
    folder.mkdir()
    for number, text in enumerate(complete_scenarios(), 1):
        (folder / f"example-{number}.yaml").write_text(text)
    junit = tmp_path / "examples.xml"
    result = shopctl(
        {**sandbox_env, "SHOP_RUNTIME": "local"},
        "scenario",
        "run",
        str(folder),
        "--junit",
        str(junit),
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
    suite = ElementTree.parse(junit).getroot()
    assert suite.get("tests") == str(len(complete_scenarios()))
    assert suite.get("failures") == "0" and suite.get("skipped") == "0"
