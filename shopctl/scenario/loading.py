"""Reading a scenario file: YAML (with line numbers kept) checked against the
JSON Schema shipped beside this module. A bad file is one ShopError naming
the file, the line and the column, and what is wrong."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from ..errors import UsageError

_SCHEMA = json.loads(files("shopctl.scenario").joinpath("schema.json").read_text())


@dataclass(frozen=True)
class Scenario:
    path: Path
    name: str
    document: dict[str, Any]

    def section(self, key: str) -> list[dict[str, Any]]:
        value = self.document.get(key) or []
        return list(value)


def _position(document: Any, path: list[Any]) -> tuple[int, int]:
    """1-based line and column of the node at ``path`` (its nearest parent)."""
    node, line, column = document, 0, 0
    for key in path:
        if isinstance(node, CommentedMap) and key in node:
            line, column = node.lc.key(key)
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            line, column = node.lc.item(key)
        else:
            break
        node = node[key]
    return line + 1, column + 1


def load(path: Path) -> Scenario:
    """The scenario in ``path``; ShopError (exit 2) when it is not one."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise UsageError(f"{where}: not valid YAML: {exc.problem}") from None
    if not isinstance(document, dict):
        raise UsageError(f"{path}:1:1: a scenario is a mapping with name and method")
    validator = jsonschema.Draft202012Validator(_SCHEMA)
    error = next(iter(sorted(validator.iter_errors(document), key=lambda e: list(e.path))), None)
    if error is not None:
        line, column = _position(document, list(error.absolute_path))
        where = "/".join(str(p) for p in error.absolute_path) or "the top level"
        raise UsageError(f"{path}:{line}:{column}: {where}: {error.message}")
    plain = json.loads(json.dumps(document))  # ruamel's types out, plain dicts in
    return Scenario(path, plain["name"], plain)


def scenario_files(targets: list[Path]) -> list[Path]:
    """Files named, and the *.yaml/*.yml files of folders named, in order."""
    found: list[Path] = []
    for target in targets:
        if target.is_dir():
            found.extend(sorted([*target.glob("*.yaml"), *target.glob("*.yml")]))
        elif target.exists():
            found.append(target)
        else:
            raise UsageError(f"{target}: no such file or folder")
    if not found:
        raise UsageError("no scenario files found")
    return found
