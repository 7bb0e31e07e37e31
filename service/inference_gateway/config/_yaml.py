"""A YAML reader that remembers lines, so every configuration error can name file:line.

PyYAML's SafeLoader builds plain dicts and lists and forgets where they were, and it keeps
the last of two equal keys without a word. This loader builds the same values, but mappings
and sequences carry the line of each key and item, and duplicate keys are recorded.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from dataclasses import dataclass

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, SequenceNode

__all__ = ["DuplicateKey", "LocatedList", "LocatedMap", "YamlDocument", "read_yaml"]

_MERGE_TAG = "tag:yaml.org,2002:merge"


class LocatedMap(dict[object, object]):
    """A YAML mapping with the line it starts on and the line of each key (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.key_lines: dict[object, int] = {}

    def line_of(self, key: object) -> int:
        return self.key_lines.get(key, self.line)


class LocatedList(list[object]):
    """A YAML sequence with the line it starts on and the line of each item (1-based)."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.item_lines: list[int] = []


@dataclass(frozen=True, slots=True)
class DuplicateKey:
    key: object
    line: int
    first_line: int


@dataclass(frozen=True, slots=True)
class YamlDocument:
    data: object
    duplicates: tuple[DuplicateKey, ...]


class _LineLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[DuplicateKey] = []

    def record_duplicates(self, node: MappingNode) -> None:
        # Checked before merge keys are flattened: overriding a merged key is legitimate.
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                continue
            line = key_node.start_mark.line + 1
            if key in seen:
                self.duplicates.append(DuplicateKey(key, line, seen[key]))
            else:
                seen[key] = line


def _construct_map(loader: _LineLoader, node: MappingNode) -> Iterator[LocatedMap]:
    data = LocatedMap(node.start_mark.line + 1)
    yield data
    loader.record_duplicates(node)
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, Hashable):
            raise ConstructorError(
                "while reading a mapping",
                node.start_mark,
                "found a key that is itself a list or mapping",
                key_node.start_mark,
            )
        data[key] = loader.construct_object(value_node)
        data.key_lines[key] = key_node.start_mark.line + 1


def _construct_seq(loader: _LineLoader, node: SequenceNode) -> Iterator[LocatedList]:
    data = LocatedList(node.start_mark.line + 1)
    yield data
    for item_node in node.value:
        data.append(loader.construct_object(item_node))
        data.item_lines.append(item_node.start_mark.line + 1)


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def read_yaml(text: str) -> YamlDocument:
    """Parse one YAML document; raises yaml.YAMLError (with a mark) on bad syntax."""
    loader = _LineLoader(text)
    try:
        data = loader.get_single_data()
    finally:
        loader.dispose()
    return YamlDocument(data, tuple(loader.duplicates))
