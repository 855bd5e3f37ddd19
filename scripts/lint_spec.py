"""Lint ``openapi/qiwi-bill-payments.yaml``: structural validity, examples and links.

openapi-spec-validator checks the document against the OpenAPI 3.1 meta-schema, but it neither
validates ``examples`` against their schemas nor resolves ``links`` (docs/sources.md, Toolchain pitfalls: a typo in a
link's operationId passes every linter and silently disables schemathesis' stateful phase). Both
are checked here. ``make lint`` runs this file; ``tests/test_spec.py`` runs the same functions.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import yaml
from openapi_spec_validator import validate

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi" / "qiwi-bill-payments.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


@cache
def load_spec() -> dict[str, Any]:
    """The document as plain data (cached; treat as read-only)."""
    with SPEC_PATH.open(encoding="utf-8") as fh:
        spec: dict[str, Any] = yaml.safe_load(fh)
    return spec


def schema_validator(schema: dict[str, Any]) -> jsonschema_rs.Validator:
    """A format-checking validator for ``schema``, whose ``#/components/...`` refs resolve in the document."""
    root = {**schema, "components": load_spec()["components"]}
    return jsonschema_rs.validator_for(root, validate_formats=True)


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow one local ``$ref`` (``#/components/...``) if ``node`` is a reference."""
    ref = node.get("$ref")
    if not isinstance(ref, str):
        return node
    target: Any = load_spec()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return resolve(target)


def iter_operations() -> Iterator[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(path, method, operation, path item) for every operation under ``paths``."""
    for path, item in load_spec()["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method], item


def iter_examples() -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, schema, value) for every example in the document, media-type and schema level."""
    spec = load_spec()

    def media_examples(where: str, media: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], Any]]:
        schema = media.get("schema", {})
        if "example" in media:
            yield f"{where} example", schema, media["example"]
        for name, example in media.get("examples", {}).items():
            yield f"{where} examples.{name}", schema, resolve(example)["value"]

    operations = [(f"{m.upper()} {p}", op) for p, m, op, _ in iter_operations()]
    operations += [(f"webhook {name}", item["post"]) for name, item in spec.get("webhooks", {}).items()]
    for label, op in operations:
        body = resolve(op.get("requestBody", {}))
        for mime, media in body.get("content", {}).items():
            yield from media_examples(f"{label} request {mime}", media)
        for status, response in op.get("responses", {}).items():
            for mime, media in resolve(response).get("content", {}).items():
                yield from media_examples(f"{label} {status} {mime}", media)
    for name, schema in spec["components"]["schemas"].items():
        for i, value in enumerate(schema.get("examples", [])):
            yield f"schema {name} examples[{i}]", schema, value
        for prop, sub in schema.get("properties", {}).items():
            for i, value in enumerate(sub.get("examples", [])):
                yield f"schema {name}.{prop} examples[{i}]", sub, value
    for name, param in spec["components"].get("parameters", {}).items():
        if "example" in param:
            yield f"parameter {name} example", param["schema"], param["example"]


def link_problems() -> list[str]:
    """Links naming an unknown operation, or a parameter the target operation does not have."""
    params_by_operation: dict[str, set[str]] = {}
    for _, _, op, item in iter_operations():
        declared = [resolve(p)["name"] for p in item.get("parameters", []) + op.get("parameters", [])]
        params_by_operation[op["operationId"]] = set(declared)
    problems = []
    for path, method, op, _ in iter_operations():
        for status, response in op.get("responses", {}).items():
            for name, link in resolve(response).get("links", {}).items():
                where = f"{method.upper()} {path} {status} link {name}"
                target = link.get("operationId")
                if target not in params_by_operation:
                    problems.append(f"{where}: unknown operationId {target!r}")
                    continue
                for param, expression in link.get("parameters", {}).items():
                    if param not in params_by_operation[target]:
                        problems.append(f"{where}: {target} has no parameter {param!r}")
                    if not str(expression).startswith(("$request.", "$response.")):
                        problems.append(f"{where}: unsupported expression {expression!r}")
    return problems


def example_problems() -> list[str]:
    """Examples that do not validate against the schema they illustrate."""
    problems = []
    for where, schema, value in iter_examples():
        errors = [e.message for e in schema_validator(schema).iter_errors(value)]
        if errors:
            problems.append(f"{where}: {'; '.join(errors)}")
    return problems


def main() -> int:
    validate(load_spec())
    problems = example_problems() + link_problems()
    for problem in problems:
        print(problem, file=sys.stderr)
    count = sum(1 for _ in iter_examples())
    if problems:
        print(f"{SPEC_PATH.name}: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"{SPEC_PATH.name}: valid OpenAPI 3.1, {count} examples valid, all links resolve")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
