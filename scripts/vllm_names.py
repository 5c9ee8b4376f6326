"""Snapshot the names a vLLM release accepts: tool parsers, reasoning parsers and `vllm serve` flags.

Reads a vLLM wheel (.whl) or an unpacked tree (the folder that holds ``vllm/``) without importing vLLM
(no torch or GPU needed) and writes JSON that tests/serving/test_registry_vllm.py checks the registry and
agentbench's own server flags against:

    python scripts/vllm_names.py /path/to/vllm-0.24.0-...whl   --out data/vllm/names-0.24.0.json
    python scripts/vllm_names.py /path/to/unpacked-wheel-root  --out data/vllm/names-0.24.0.json

Sources (vLLM 0.24): the lazy registries ``_TOOL_PARSERS_TO_REGISTER`` (vllm/tool_parsers/__init__.py) and
``_REASONING_PARSERS_TO_REGISTER`` (vllm/reasoning/__init__.py); the serve flags from every literal flag
of ``add_argument`` in vllm/engine/arg_utils.py and vllm/entrypoints/openai/cli_args.py, plus one
``--field-name`` per field of the frontend argument classes (``FrontendArgs.add_cli_args`` derives them).
Boolean flags also get their ``--no-`` form where argparse's BooleanOptionalAction adds it.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
import zipfile
from pathlib import Path

TOOL_PARSERS = "vllm/tool_parsers/__init__.py"
REASONING_PARSERS = "vllm/reasoning/__init__.py"
ENGINE_ARGS = "vllm/engine/arg_utils.py"
FRONTEND_ARGS = "vllm/entrypoints/openai/cli_args.py"
FRONTEND_CLASSES = ("BaseFrontendArgs", "FrontendArgs")


class Source:
    """Files of a wheel or an unpacked tree, by their path inside the package root."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip = zipfile.ZipFile(path) if path.is_file() else None
        if self._zip is None and not (path / "vllm").is_dir():
            raise SystemExit(f"{path}: neither a wheel nor a folder holding vllm/")

    def read(self, name: str) -> str:
        if self._zip is not None:
            return self._zip.read(name).decode("utf-8")
        return (self.path / name).read_text(encoding="utf-8")

    def version(self) -> str:
        """The version in vllm/_version.py (setuptools-scm writes it), else from the wheel's file name."""
        try:
            match = re.search(r"""__version__\s*=\s*version\s*=\s*['"]([^'"]+)""", self.read("vllm/_version.py"))
            if match:
                return match.group(1)
        except (KeyError, FileNotFoundError):
            pass
        match = re.match(r"vllm-([^-]+)-", self.path.name)
        return match.group(1) if match else "unknown"


def registry_keys(text: str, variable: str, source: str) -> list[str]:
    """The keys of the dict literal assigned to ``variable``."""
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == variable for t in node.targets):
            if not isinstance(node.value, ast.Dict):
                break
            return sorted(k.value for k in node.value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str))
    raise SystemExit(f"{source}: no dict literal {variable} (has vLLM's registry moved?)")


def _bool_fields(tree: ast.Module, classes: tuple[str, ...]) -> tuple[set[str], set[str]]:
    """(every annotated field, the plainly ``bool`` ones) of the named classes."""
    fields: set[str] = set()
    bools: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and node.name in classes:
            for item in node.body:
                if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    fields.add(item.target.id)
                    if _gets_no_form(ast.unparse(item.annotation)):
                        bools.add(item.target.id)
    return fields, bools


def _gets_no_form(annotation: str) -> bool:
    """vLLM's get_kwargs gives BooleanOptionalAction to types containing bool, except ``bool | str | None``
    (a bare flag or a value)."""
    parts = {p.strip() for p in annotation.split("|")}
    return "bool" in parts and parts != {"bool", "str", "None"}


def _argument_flags(tree: ast.Module, bool_fields: set[str]) -> set[str]:
    """Literal flags of every ``add_argument`` call, with ``--no-`` forms for boolean arguments."""
    flags: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
            continue
        literal = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
                   and a.value.startswith("-")]
        flags.update(literal)
        longs = [f for f in literal if f.startswith("--")]
        if longs and _is_boolean(node, bool_fields):
            flags.add("--no-" + longs[0][2:])
    return flags


def _is_boolean(call: ast.Call, bool_fields: set[str]) -> bool:
    for kw in call.keywords:
        if kw.arg == "action" and "BooleanOptionalAction" in ast.unparse(kw.value):
            return True
        if kw.arg is None and _unpacks_bool_field(kw.value, bool_fields):
            return True
    return False


def _unpacks_bool_field(value: ast.expr, bool_fields: set[str]) -> bool:
    """``**group_kwargs["field"]`` (also nested in ``**{**group_kwargs["field"], ...}``) of a boolean field:
    get_kwargs gives those BooleanOptionalAction."""
    if isinstance(value, ast.Subscript) and isinstance(value.slice, ast.Constant):
        return value.slice.value in bool_fields
    if isinstance(value, ast.Dict):
        return any(k is None and _unpacks_bool_field(v, bool_fields) for k, v in zip(value.keys, value.values))
    return False


def serve_flags(source: Source) -> list[str]:
    """Every flag ``vllm serve`` accepts (as far as static reading can tell)."""
    engine = ast.parse(source.read(ENGINE_ARGS))
    _, engine_bools = _bool_fields(engine, ("EngineArgs", "AsyncEngineArgs"))
    frontend = ast.parse(source.read(FRONTEND_ARGS))
    fields, frontend_bools = _bool_fields(frontend, FRONTEND_CLASSES)
    flags = _argument_flags(engine, engine_bools) | _argument_flags(frontend, frontend_bools)
    for name in fields:
        flags.add("--" + name.replace("_", "-"))
        if name in frontend_bools:
            flags.add("--no-" + name.replace("_", "-"))
    return sorted(flags)


def snapshot(path: Path) -> dict[str, object]:
    """The names of the vLLM at ``path``."""
    source = Source(path)
    return {
        "vllm_version": source.version(),
        "generated_by": "scripts/vllm_names.py",
        "tool_parsers": registry_keys(source.read(TOOL_PARSERS), "_TOOL_PARSERS_TO_REGISTER", TOOL_PARSERS),
        "reasoning_parsers": registry_keys(source.read(REASONING_PARSERS), "_REASONING_PARSERS_TO_REGISTER",
                                           REASONING_PARSERS),
        "serve_flags": serve_flags(source),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="vLLM wheel, or the folder that holds vllm/")
    parser.add_argument("--out", type=Path, help="JSON file to write (default: stdout)")
    args = parser.parse_args(argv)
    text = json.dumps(snapshot(args.source), indent=1) + "\n"
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
