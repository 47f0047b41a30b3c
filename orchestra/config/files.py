"""Reading YAML files strictly: UTF-8 only, duplicate keys rejected, errors without file content.

raw = read_yaml("config.yaml")   # ConfigError naming the line, never quoting it

PyYAML keeps the last of two equal keys without a word, so a duplicated `models:` section
silently drops the first; `unique_key_loader()` refuses it instead. Errors name the line and
column but do not quote the file: a line of a config can hold a key.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestra.errors import ConfigError

if TYPE_CHECKING:
    import yaml


@cache
def unique_key_loader() -> type[yaml.SafeLoader]:
    """`yaml.SafeLoader` that raises on a key repeated within one mapping (PyYAML is imported on
    the first file read: `import orchestra` does not need it)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: dict[Any, yaml.Mark] = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: SafeLoader reports it below
                    break
                if first is not None:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"duplicate key {key!r} (first at line {first.line + 1})",
                        key_node.start_mark,
                    )
                seen[key] = key_node.start_mark
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def parse_yaml(text: str, origin: str) -> Any:
    """The YAML document in `text` (None when empty); a `ConfigError` names where it is broken."""
    import yaml

    try:
        return yaml.load(text, Loader=unique_key_loader())  # a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ConfigError(f"{origin}: not valid YAML: {describe_yaml_error(err)}") from None


def read_text(path: str | Path) -> str:
    """The file's text; a file that is not UTF-8 is a `ConfigError` naming the line and column."""
    path = Path(path)
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        before = data[: err.start]
        line = before.count(b"\n") + 1
        column = err.start - (before.rfind(b"\n") + 1) + 1
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at line {line}, column {column}); "
            "save the file as UTF-8"
        ) from None


def read_yaml(path: str | Path) -> Any:
    """`parse_yaml` of the UTF-8 file at `path`."""
    return parse_yaml(read_text(path), str(path))


def describe_yaml_error(err: yaml.YAMLError) -> str:
    """What is wrong and where (line, column), without the snippet of the file PyYAML prints."""
    import yaml

    if not isinstance(err, yaml.MarkedYAMLError):
        return type(err).__name__
    mark = err.problem_mark or err.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    what = "; ".join(part for part in (err.context, err.problem) if part) or type(err).__name__
    return where + what
