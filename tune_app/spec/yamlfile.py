"""Reading YAML from users: PyYAML's safe loader, made strict where a config file needs it.

On top of ``yaml.SafeLoader`` (no Python object tags, ever):

- a duplicated key is an error, not "the last one wins";
- numbers like ``1e-3`` are floats, as in YAML 1.2 (YAML 1.1 reads them as strings);
- a document whose aliases expand past ``MAX_VALUES`` values (a "billion laughs"
  file) or that nests deeper than ``MAX_DEPTH`` is refused before it is built;
- every error names the line and column.

Example:
    >>> load_yaml("lr: 1e-3")
    {'lr': 0.001}
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from ..errors import SpecError

MAX_VALUES = 100_000
MAX_DEPTH = 64


class StrictSafeLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and reads ``1e-3`` as a float."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})",
                    key_node.start_mark)
            if isinstance(key, (str, int, float, bool)):
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


# YAML 1.2 floats: a mantissa without a dot and a signed exponent (1e-3, 5E+2) included.
StrictSafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?(?:[eE][-+]?[0-9]+)
                |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
                |[-+]?\.(?:inf|Inf|INF)
                |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def load_yaml(text: str, source: str | None = None) -> Any:
    """Parse one YAML document safely; raise :class:`SpecError` with line and column on any problem."""
    loader = None
    try:
        loader = StrictSafeLoader(text)  # the reader already refuses some characters here
        node = loader.get_single_node()
        if node is None:
            return None
        _check_size(node)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise SpecError(f"invalid YAML: {where}{exc.problem or exc.context}", source) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid YAML: {exc}", source) from None
    except RecursionError:
        raise SpecError(f"invalid YAML: values are nested too deeply (at most {MAX_DEPTH} levels)", source) from None
    finally:
        if loader is not None:
            loader.dispose()


def _check_size(root: yaml.Node) -> None:
    """Refuse documents that nest too deep or whose aliases expand to too many values."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise yaml.YAMLError(f"values are nested more than {MAX_DEPTH} levels deep "
                                 f"(line {node.start_mark.line + 1})")
        if id(node) in sizes:  # an alias: the same node again, counted in full each time
            return sizes[id(node)]
        if isinstance(node, yaml.MappingNode):
            total = 1 + sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            total = 1 + sum(size(item, depth + 1) for item in node.value)
        else:
            total = 1
        sizes[id(node)] = total
        if total > MAX_VALUES:
            raise yaml.YAMLError(f"the document expands to more than {MAX_VALUES} values (YAML aliases?), "
                                 f"near line {node.start_mark.line + 1}")
        return total

    size(root, 0)
