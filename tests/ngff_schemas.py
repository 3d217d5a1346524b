"""Validate OME-Zarr attributes against the NGFF JSON schemas vendored in tests/data/ngff (see SOURCES.md)."""
from __future__ import annotations

import json
from pathlib import Path

from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).parent / "data" / "ngff"


def registry(version: str) -> Registry:
    """Every schema of `version`, under its `$id`, so `$ref`s resolve offline."""
    resources = []
    for path in sorted((ROOT / version / "schemas").glob("*.schema")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema, default_specification=DRAFT202012)))
    return Registry().with_resources(resources)


def validate(attributes: dict, version: str) -> None:
    """Raise jsonschema.ValidationError unless `attributes` are a valid (and strict) NGFF `version` image."""
    reg = registry(version)
    for name in ("image.schema", "strict_image.schema"):
        schema = json.loads((ROOT / version / "schemas" / name).read_text())
        validator_for(schema, default=Draft202012Validator)(schema, registry=reg).validate(attributes)
