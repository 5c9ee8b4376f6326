"""YAML with positions: parse a file into plain data plus the line and column of every value.

PyYAML's constructors drop positions and silently keep the last of duplicate keys. Here the file is
composed into nodes and converted by hand, so every problem (syntax, duplicate keys, validation)
can be reported as ``file:line:column``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from agentbench.errors import Problem

#: A path into parsed data: mapping keys and list indexes, e.g. ("turns", 0, "user").
DataPath = tuple[Any, ...]


@dataclass
class SourceDoc:
    """Parsed YAML data and the 1-based (line, column) of each value, keyed by its path."""

    file: str
    data: Any
    marks: dict[DataPath, tuple[int, int]] = field(default_factory=dict)

    def locate(self, path: DataPath) -> tuple[int, int]:
        """Position of ``path`` or of its nearest ancestor that exists in the file."""
        for end in range(len(path), -1, -1):
            if path[:end] in self.marks:
                return self.marks[path[:end]]
        return (1, 1)

    def problem(self, path: DataPath, message: str) -> Problem:
        """A ``Problem`` located at ``path``."""
        line, column = self.locate(path)
        return Problem(self.file, line, column, format_path(path), message)


def format_path(path: DataPath) -> str:
    """``("turns", 0, "user")`` -> ``turns[0].user``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _Converter:
    """Turns composed YAML nodes into plain data, recording marks and duplicate keys."""

    def __init__(self, doc: SourceDoc) -> None:
        self.doc = doc
        self.problems: list[Problem] = []
        self._constructor = yaml.constructor.SafeConstructor()

    def convert(self, node: yaml.Node, path: DataPath, depth: int = 0) -> Any:
        if depth > 100:
            raise ValueError("nesting deeper than 100 levels")
        self.doc.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self._constructor.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: DataPath, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        self._constructor.flatten_mapping(node)  # resolves YAML merge keys (<<)
        for key_node, value_node in node.value:
            key = self._constructor.construct_object(key_node, deep=True)
            where = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                self.problems.append(self._at(where, (*path, str(key)), "keys must be plain text"))
                continue
            key_path = (*path, key)
            if key in result:
                first = self.doc.marks[key_path][0]
                self.problems.append(self._at(where, key_path, f"duplicate key {key!r} (first on line {first})"))
                continue
            # Point a field's errors at its key, which is where a reader looks.
            self.doc.marks[key_path] = where
            result[key] = self.convert(value_node, key_path, depth + 1)
        return result

    def _at(self, where: tuple[int, int], path: DataPath, message: str) -> Problem:
        return Problem(self.doc.file, where[0], where[1], format_path(path), message)


def parse_yaml(text: str, file: str) -> tuple[SourceDoc | None, list[Problem]]:
    """Parse one YAML document; return it (None if unreadable) and every problem found."""
    doc = SourceDoc(file=file, data=None)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = " ".join(filter(None, [exc.context, exc.problem]))
        return None, [Problem(file, line, column, "", f"YAML syntax error: {reason}")]
    except yaml.YAMLError as exc:
        return None, [Problem(file, 1, 1, "", f"YAML error: {exc}")]
    if node is None:
        return None, [Problem(file, 1, 1, "", "the file is empty")]
    converter = _Converter(doc)
    try:
        doc.data = converter.convert(node, ())
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        return None, [Problem(file, 1, 1, "", f"YAML error: {exc}")]
    return doc, converter.problems
