"""The OpenAPI document: a valid OpenAPI 3.1 description of exactly the routes the app has."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import Any

import schemathesis
from flask import Flask
from openapi_spec_validator import validate

#: Methods Flask adds to every route by itself.
_IMPLICIT = {"HEAD", "OPTIONS"}


def document() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(
        resources.files("swarmdash").joinpath("openapi.json").read_text())
    return doc


def flask_routes(app: Flask) -> set[tuple[str, str]]:
    """(OpenAPI path, method) of every route: ``<path:filename>`` becomes ``{filename}``."""
    routes = set()
    for rule in app.url_map.iter_rules():
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        routes.update((path, method) for method in rule.methods or () if method not in _IMPLICIT)
    return routes


def documented_routes(doc: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}
    return {(path, method.upper()) for path, item in doc["paths"].items()
            for method in item if method in methods}


def test_document_is_valid_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1.")
    validate(doc)  # raises on any violation of the OpenAPI 3.1 schema
    schema = schemathesis.openapi.from_dict(doc)
    operations = [op.ok() for op in schema.get_all_operations()]  # .ok() raises if unloadable
    assert {(op.path, op.method.upper()) for op in operations} == documented_routes(doc)


def test_every_route_is_documented_and_every_documented_route_exists(app: Flask) -> None:
    served, documented = flask_routes(app), documented_routes(document())
    assert served - documented == set(), "routes missing from openapi.json"
    assert documented - served == set(), "openapi.json documents routes the app lacks"


def test_every_documented_operation_lists_its_json_errors() -> None:
    for path, item in document()["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")) and path != "/health":
                    content = response.get("content", {})
                    assert "application/json" in content, f"{method} {path} {status}"


def test_the_node_serves_the_document(app: Flask) -> None:
    res = app.test_client().get("/api/v1/openapi.json")
    assert res.status_code == 200
    assert res.mimetype == "application/json"
    assert res.get_json() == document()
