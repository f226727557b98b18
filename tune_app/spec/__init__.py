"""YAML file -> validated, typed experiment spec.

``load_spec`` reads a file with a safe loader, applies ``--set`` overrides, then
validates everything a run depends on before anything starts: unknown keys, wrong
types, impossible ranges and unknown names are reported with the dotted path of the
field, the bad value and what is allowed, all problems at once.

- :mod:`.sections`: the pydantic models, each section with its own rules;
- :mod:`.checks`: the rules that join sections, small named checks;
- :mod:`.overrides`: ``--set dotted.key=value``;
- :mod:`.loading`: reading, validating, finding bundled search spaces by name.

Example:
    >>> spec = load_spec("quickstart", overrides=["train.epochs=2"])   # search_spaces/quickstart.yaml
    >>> spec.train.epochs
    2
"""

from __future__ import annotations

from .loading import MAX_SPEC_BYTES, bundled_search_spaces, find_spec_file, load_spec, read_yaml, validate_spec
from .overrides import apply_override
from .sections import DataSpec, ExperimentSpec, ModelSpec, Problem, ResourcesSpec, TrainSpec, TuneSpec

__all__ = [
    "MAX_SPEC_BYTES",
    "DataSpec",
    "ExperimentSpec",
    "ModelSpec",
    "Problem",
    "ResourcesSpec",
    "TrainSpec",
    "TuneSpec",
    "apply_override",
    "bundled_search_spaces",
    "find_spec_file",
    "load_spec",
    "read_yaml",
    "validate_spec",
]
