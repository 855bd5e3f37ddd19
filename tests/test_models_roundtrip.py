"""Hypothesis round-trip of every generated model: ``from_dict(to_dict(x)) == x``.

Strategies are derived from the OpenAPI document's own schemas (a small builder for the keywords the
document uses), so a schema change is picked up without editing this file, and a keyword the builder
does not understand fails loudly instead of generating wrong data.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import qiwi_bill_client.models as models
from scripts import lint_spec

SCHEMAS: dict[str, Any] = lint_spec.load_spec()["components"]["schemas"]
# Models generated from inline schemas, checked through the schema that contains them.
NESTED = {"ErrorCause": "Error"}
UNDERSTOOD = {
    "type", "properties", "required", "additionalProperties", "items", "enum", "const", "pattern", "maxLength",
    "minLength", "minimum", "maximum", "format", "allOf", "anyOf", "$ref", "description", "examples", "summary",
}  # fmt: skip

OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
DATETIMES = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz).isoformat(),
    st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    OFFSETS,
)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=20)


def strategy(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A strategy for JSON values valid against ``schema`` (the subset of JSON Schema the spec uses)."""
    unknown = set(schema) - UNDERSTOOD
    if unknown:
        raise AssertionError(f"extend the strategy builder for {sorted(unknown)}")
    if "$ref" in schema:
        return strategy(lint_spec.resolve(schema))
    if "allOf" in schema:
        merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
        for part in (lint_spec.resolve(p) for p in schema["allOf"]):
            merged["properties"].update(part.get("properties", {}))
            merged["required"] += part.get("required", [])
        return strategy(merged)
    if "anyOf" in schema:  # the request schemas' `{anyOf: [{$ref: X}, {type: "null"}]}` (null = absent)
        return st.one_of([strategy(part) for part in schema["anyOf"]])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    return st.one_of([_typed(t, schema) for t in types])


def _typed(kind: str, schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    if kind == "null":
        return st.none()
    if kind == "string":
        if schema.get("format") == "date-time":
            return DATETIMES
        if schema.get("format") == "uri":
            return st.uuids().map(lambda u: f"https://oplata.qiwi.com/form/?invoice_uid={u}")
        assert "format" not in schema, f"unsupported format {schema['format']!r}"
        # ECMA-262 `\d` is ASCII-only; Python needs re.ASCII to agree with jsonschema-rs.
        base = st.from_regex(re.compile(schema["pattern"], re.ASCII), fullmatch=True) if "pattern" in schema else TEXT
        return base.filter(lambda s: schema.get("minLength", 0) <= len(s) <= schema.get("maxLength", 10**6))
    if kind == "number":
        return st.floats(min_value=schema.get("minimum"), max_value=schema.get("maximum"), allow_nan=False)
    if kind == "array":
        return st.lists(strategy(schema["items"]), max_size=3)
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        fixed = st.fixed_dictionaries(
            {k: strategy(v) for k, v in props.items() if k in required},
            optional={k: strategy(v) for k, v in props.items() if k not in required},
        )
        extra = schema.get("additionalProperties", True)
        if extra is False:
            return fixed
        values = TEXT if extra is True else strategy(extra)
        extras = st.dictionaries(TEXT.filter(lambda k: k not in props), values, max_size=3)
        return st.builds(lambda a, b: {**b, **a}, fixed, extras)
    raise AssertionError(f"unsupported type {kind!r}")


def _model_names() -> list[str]:
    return sorted(n for n in models.__all__ if not issubclass(getattr(models, n), enum.Enum))


def test_every_generated_model_has_a_schema() -> None:
    for name in _model_names():
        assert name in SCHEMAS or name in NESTED, f"{name} has no schema: update NESTED"


@pytest.mark.parametrize("name", [n for n in _model_names() if n in SCHEMAS])
@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much], deadline=None)
@given(data=st.data())
def test_model_round_trips(name: str, data: st.DataObject) -> None:
    model = getattr(models, name)
    raw = data.draw(strategy(SCHEMAS[name]), label=name)
    assert lint_spec.schema_validator(SCHEMAS[name]).is_valid(raw), "the strategy drew an invalid value"
    parsed = model.from_dict(raw)
    assert model.from_dict(parsed.to_dict()) == parsed
    assert parsed.to_dict() == raw


@pytest.mark.parametrize("name", [n for n in models.__all__ if issubclass(getattr(models, n), enum.Enum)])
def test_enums_match_the_schema(name: str) -> None:
    enum_cls = getattr(models, name)
    assert sorted(m.value for m in enum_cls) == sorted(SCHEMAS[name]["enum"])
