"""YAML with positions: the parsed data plus the line of every key and list item."""

from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[str | int, ...]

class YamlProblem(Exception):
    """A YAML file that cannot be read as data; carries the 1-based line and the reason."""

    def __init__(self, line: int, field: str, reason: str) -> None:
        super().__init__(reason)
        self.line, self.field, self.reason = line, field, reason

def load(text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML text; return the data and a map from field path to 1-based line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlProblem(line, "(yaml)", f"not valid YAML: {exc.problem or exc.context}") from None
    lines: dict[Path_, int] = {(): 1}
    if root is not None:
        _walk(root, (), lines)
    return data, lines

def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            child = path + (key,)
            if key in seen:
                raise YamlProblem(key_node.start_mark.line + 1, dotted(child), f"duplicate key {key!r}")
            seen.add(key)
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            _walk(item, path + (index,), lines)

def dotted(path: Path_) -> str:
    return ".".join(str(part) for part in path) or "(top)"

def line_of(lines: dict[Path_, int], path: Path_) -> int:
    """The line of `path`, or of its nearest ancestor present in the file."""
    while path not in lines:
        path = path[:-1]
    return lines[path]
