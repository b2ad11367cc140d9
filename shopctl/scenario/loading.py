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

from shopctl.errors import UsageError
from shopctl.scenario import checks

_SCHEMA = json.loads(files("shopctl.scenario").joinpath("schema.json").read_text())
_STEP_ACTIONS = [k for k in _SCHEMA["$defs"]["step"]["properties"] if k != "name"]
_FAULT_RULES = [rule["then"] for rule in _SCHEMA["$defs"]["fault"]["allOf"]]


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
    found = [(list(e.absolute_path), _said(e)) for e in validator.iter_errors(document)]
    plain = json.loads(json.dumps(document))  # ruamel's types out, plain dicts in
    try:  # the names and variables, as far as the shape lets them be read
        found += [(list(where), message) for where, message in checks.problems(plain)]
    except (KeyError, TypeError, AttributeError, StopIteration):
        if not found:
            raise
    if found:
        lines = []
        for place, message in _one_per_place(found):
            line, column = _position(document, place)
            named = "/".join(str(p) for p in place) or "the top level"
            lines.append((line, column, f"{path}:{line}:{column}: {named}: {message}"))
        raise UsageError("\n".join(text for *_, text in sorted(lines)))
    return Scenario(path, plain["name"], plain)


def _one_per_place(found: list[tuple[list[Any], str]]) -> list[tuple[list[Any], str]]:
    """The first problem said at each place (a bad step fails several of
    the schema's branches at once)."""
    seen: dict[str, tuple[list[Any], str]] = {}
    for where, message in found:
        seen.setdefault("/".join(map(str, where)), (where, message))
    return list(seen.values())


def _said(error: jsonschema.ValidationError) -> str:
    """The schema's complaint in the words of the file."""
    instance = error.instance
    if error.validator == "oneOf" and isinstance(instance, dict):
        actions = [k for k in instance if k != "name" and k in _STEP_ACTIONS]
        if len(actions) > 1:
            return (
                f"one action per step; this one has {' and '.join(actions)} (make it one step each)"
            )
        if error.schema is _SCHEMA["$defs"]["step"]:
            return f"a step needs one action of {', '.join(_STEP_ACTIONS)}"
    if error.validator == "required" and error.schema in _FAULT_RULES:
        kind = instance.get("kind") if isinstance(instance, dict) else None
        missing = error.message.split("'")[1]
        needs = {"ms": "how many milliseconds", "until": "the event type that lets it go"}
        return f"a {kind} needs {missing}: {needs.get(missing, missing)}"
    if error.validator == "enum" and isinstance(instance, str):
        hint = checks.suggest(instance, [str(v) for v in error.validator_value])
        return f"{instance!r} is not one of {', '.join(map(str, error.validator_value))}{hint}"
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = list(error.schema.get("properties", {}))
        extra = [k for k in instance if k not in allowed]
        if extra and allowed:
            hint = checks.suggest(str(extra[0]), allowed)
            return f"{extra[0]!r} is not a field here (fields: {', '.join(allowed)}){hint}"
    return error.message


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
