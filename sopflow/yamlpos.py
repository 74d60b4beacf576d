"""YAML with positions: the parsed data plus the line of every key and list item.

Only plain YAML is read: no aliases (so no alias bombs), no tags beyond the standard scalar
ones, keys that are text, one document, and collections nested at most MAX_DEPTH deep.
"""

from __future__ import annotations

from typing import Any

import yaml

Path_ = tuple[str | int, ...]

MAX_DEPTH = 50
_CORE = "tag:yaml.org,2002:"
_SCALAR_KINDS = {f"{_CORE}{tag}": kind for tag, kind in (
    ("str", "text"), ("int", "an integer"), ("float", "a number"), ("bool", "true/false"), ("null", "null"),
    ("timestamp", "a date"),
)}
_COLLECTION_TAGS = {yaml.MappingNode: f"{_CORE}map", yaml.SequenceNode: f"{_CORE}seq"}


class YamlProblem(Exception):
    """A YAML file that cannot be read as data; carries the 1-based line and the reason."""

    def __init__(self, line: int, field: str, reason: str) -> None:
        super().__init__(reason)
        self.line, self.field, self.reason = line, field, reason


class _Loader(yaml.SafeLoader):
    """A SafeLoader whose composer refuses aliases and collections nested deeper than MAX_DEPTH."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise YamlProblem(event.start_mark.line + 1, "(yaml)",
                              f"YAML aliases like *{event.anchor} are not allowed; write the value out in full")
        if not isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            return super().compose_node(parent, index)
        if self.depth == MAX_DEPTH:
            raise YamlProblem(event.start_mark.line + 1, "(yaml)",
                              f"lists and mappings are nested more than {MAX_DEPTH} levels deep; flatten them")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def load(text: str) -> tuple[Any, dict[Path_, int]]:
    """Parse YAML text; return the data and a map from field path to 1-based line."""
    try:
        loader = _Loader(text)
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        reason = f"character U+{exc.character:04X} is not allowed in YAML; remove it"
        raise YamlProblem(line, "(yaml)", reason) from None
    lines: dict[Path_, int] = {(): 1}
    try:
        root = _single_document(loader)
        return (None if root is None else _build(loader, root, (), lines)), lines
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        # a mark at the very end of the file is reported on its last line
        line = min(mark.line + 1, len(text.splitlines())) if mark else 1
        problem = " ".join(str(exc.problem or exc.context).split())
        raise YamlProblem(max(line, 1), "(yaml)", f"not valid YAML: {problem}") from None
    finally:
        loader.dispose()


def _single_document(loader: _Loader) -> yaml.Node | None:
    """The one document of the stream as a node tree, None when there is none."""
    loader.get_event()  # stream start
    root = None if loader.check_event(yaml.StreamEndEvent) else loader.compose_document()
    if not loader.check_event(yaml.StreamEndEvent):
        line = loader.peek_event().start_mark.line + 1
        raise YamlProblem(line, "(yaml)", "a second YAML document starts here; keep one YAML document per file")
    return root


def _build(loader: _Loader, node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> Any:
    """The data of `node`, recording the line of every key and list item below it in `lines`."""
    line = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode):
        if node.tag not in _SCALAR_KINDS:
            raise YamlProblem(line, dotted(path), _tag_reason(node.tag))
        try:  # the standard constructors raise these on values their tag cannot hold, e.g. 2027-02-30
            return loader.construct_object(node)
        except (ValueError, LookupError, AttributeError):
            shown = node.value if len(node.value) <= 20 else node.value[:20] + "…"
            raise YamlProblem(line, dotted(path),
                              f"cannot read {shown!r} as {_SCALAR_KINDS[node.tag]}; quote it if it is text") from None
    if node.tag != _COLLECTION_TAGS[type(node)]:
        raise YamlProblem(line, dotted(path), _tag_reason(node.tag))
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[path + (index,)] = item.start_mark.line + 1
            items.append(_build(loader, item, path + (index,), lines))
        return items
    mapping: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        if not (isinstance(key_node, yaml.ScalarNode) and key_node.tag == f"{_CORE}str"):
            raise YamlProblem(key_line, dotted(path), "keys must be text; use a name, quoted if it looks like "
                                                      "a number, a date, true/false or null")
        key = key_node.value
        if key in mapping:
            raise YamlProblem(key_line, dotted(path + (key,)), f"duplicate key {key!r}")
        lines[path + (key,)] = key_line
        mapping[key] = _build(loader, value_node, path + (key,), lines)
    return mapping


def _tag_reason(tag: str) -> str:
    shown = "!!" + tag.removeprefix(_CORE) if tag.startswith(_CORE) else tag
    return f"tag {shown} is not allowed; write plain text, numbers, true/false, null, lists and mappings"


def dotted(path: Path_) -> str:
    """`path` as the field path shown in errors; keys that are empty or not printable are quoted."""
    parts = (repr(part) if isinstance(part, str) and not (part and part.isprintable()) else str(part) for part in path)
    return ".".join(parts) or "(top)"


def line_of(lines: dict[Path_, int], path: Path_) -> int:
    """The line of `path`, or of its nearest ancestor present in the file."""
    while path not in lines:
        path = path[:-1]
    return lines[path]
