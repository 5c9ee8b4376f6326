"""Pydantic validation errors as located problems, with messages written for people.

Unknown keys name the allowed ones (and the closest match); missing fields point at the mapping
that lacks them; parts of pydantic's error locations that are not in the file (union tags) are
dropped.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from agentbench.errors import Problem
from agentbench.scenario.yaml_source import DataPath, SourceDoc, format_path


def _at(data: Any, path: DataPath) -> Any:
    for part in path:
        data = data[part]
    return data


def validation_problems(exc: ValidationError, doc: SourceDoc, model: type[BaseModel],
                        base: DataPath = ()) -> list[Problem]:
    """Problems for a pydantic error on the data at ``base`` in ``doc``, validated as ``model``."""
    problems = []
    data = _at(doc.data, base)
    for err in exc.errors():
        path = (*base, *_data_path(data, err["loc"]))
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = _unknown_key_message(model, path[len(base):])
        elif err["type"] == "missing":
            # The field is absent, so point at the mapping that lacks it.
            line, column = doc.locate(path[:-1])
            problems.append(Problem(doc.file, line, column, format_path(path),
                                    f"missing required field {path[-1]!r}"))
            continue
        problems.append(doc.problem(path, message))
    return problems


def _data_path(data: Any, loc: tuple[Any, ...]) -> DataPath:
    """The part of a pydantic error location that exists in the data (drops union tags)."""
    path: list[Any] = []
    node = data
    for part in loc:
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_list or (isinstance(node, dict) and part in node):
            node = node[part]
        elif part == loc[-1] and isinstance(part, str) and not part.startswith(("function-", "json-")):
            path.append(part)  # a missing field: keep its name
            break
        else:
            continue
        path.append(part)
    return tuple(path)


def _unknown_key_message(model: type[BaseModel], path: DataPath) -> str:
    key = path[-1]
    allowed = _allowed_keys(model, path[:-1])
    if not allowed:
        return f"unknown key {key!r}"
    close = difflib.get_close_matches(str(key), allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r}{hint} (allowed: {', '.join(allowed)})"


def _allowed_keys(model: type[BaseModel], path: DataPath) -> list[str]:
    """The field names of the model that sits at ``path`` under ``model``."""
    current: Any = model
    for part in path:
        if typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]  # a list index or a mapping key
            continue
        found = current if _is_model(current) else _inner_model(current)
        if found is None or part not in found.model_fields:
            return []
        current = found.model_fields[part].annotation
    found = current if _is_model(current) else _inner_model(current)
    return sorted(found.model_fields) if found is not None else []


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _inner_model(tp: Any) -> Any:
    """The model inside ``list[M]``, ``dict[str, M]`` or ``M | None``."""
    for arg in reversed(typing.get_args(tp)):
        if _is_model(arg):
            return arg
    return None
