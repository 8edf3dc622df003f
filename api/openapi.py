"""The OpenAPI 3.1 document, generated from the routes' msgspec types."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from api.routing import RouteSpec

_ERROR = {
    "type": "object",
    "required": ["success", "error", "timestamp", "requestId"],
    "properties": {
        "success": {"const": False},
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}},
        },
        "timestamp": {"type": "string", "format": "date-time"},
        "requestId": {"type": "string"},
    },
}


def _envelope(data_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["success", "data", "message", "timestamp", "requestId"],
        "properties": {
            "success": {"const": True},
            "data": data_schema,
            "message": {"type": "string"},
            "timestamp": {"type": "string", "format": "date-time"},
            "requestId": {"type": "string"},
        },
    }


def _ref_alone(schema: dict[str, Any]) -> dict[str, Any]:
    """`{"$ref": X, "anyOf": …}` (a body type with extra rules) as `allOf`: tools that follow
    OpenAPI 3.0 ignore the siblings of a `$ref`, or the `$ref` itself."""
    if "$ref" not in schema or len(schema) == 1:
        return schema
    rest = {k: v for k, v in schema.items() if k != "$ref"}
    rest.setdefault("type", "object")  # request bodies are structs; `required` alone holds for any non-object
    return {"allOf": [{"$ref": schema["$ref"]}, rest]}


def _refs_alone(schema: Any) -> Any:
    """`_ref_alone` all the way down: a nested field's type with extra rules (a service's
    `warmup`) is a `$ref` with siblings too."""
    if isinstance(schema, dict):
        return _ref_alone({k: _refs_alone(v) for k, v in schema.items()})
    if isinstance(schema, list):
        return [_refs_alone(item) for item in schema]
    return schema


def _no_nul(schema: Any) -> None:
    """State the rule every decoder applies (api.validation.load_json): no text holds NUL."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and not ({"format", "enum", "const"} & schema.keys()):
            if "pattern" in schema:
                schema.setdefault("not", {"pattern": "\\x00"})
            else:
                schema["pattern"] = "^[^\\x00]*$"
        for value in schema.values():
            _no_nul(value)
    elif isinstance(schema, list):
        for item in schema:
            _no_nul(item)


def build(specs: list[RouteSpec], prefix: str = "/api/v1") -> dict[str, Any]:
    types: list[Any] = []
    for s in specs:
        for t in (s.body, s.response, s.query):
            if t is not None:
                types.append(t)
    schemas, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
    by_type = dict(zip(types, schemas))
    paths: dict[str, Any] = {}
    for s in specs:
        if s.produces == "application/json":
            success = {"application/json": {"schema": _envelope(by_type[s.response] if s.response is not None else {})}}
        else:
            success = {s.produces: {"schema": {"type": "string"}}}
        op: dict[str, Any] = {
            "summary": s.summary,
            "operationId": s.handler.__name__,
            "tags": s.tags,
            "responses": {
                str(s.status): {"description": "success", "content": success},
                "4XX": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
                "503": {"description": "the database, Redis or the engine is unavailable (Retry-After)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}},
            },
        }
        if s.access != "public":
            op["security"] = [{"bearer": []}]
        # Ids are UUIDs; other path values (a signed link's token) are opaque strings.
        params = [{"name": n, "in": "path", "required": True,
                   "schema": {"type": "string", "format": "uuid"} if n == "id" or n.endswith("_id")
                   else {"type": "string", "minLength": 1}}
                  for n in re.findall(r"{(\w+)}", s.path)]
        if s.query is not None:
            qschema = components.get(s.query.__name__, {})
            for name, prop in qschema.get("properties", {}).items():
                params.append({"name": name, "in": "query", "required": name in qschema.get("required", []), "schema": prop})
        if params:
            op["parameters"] = params
        if s.body is not None:
            op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref_alone(by_type[s.body])}}}
        elif s.raw_body:
            op["requestBody"] = {"required": True, "content": {ct: {"schema": {"type": "string", "pattern": "\\S"}}
                                                               for ct in s.raw_body.split(",")}}
        if s.method == "POST":
            op.setdefault("parameters", []).append(
                {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 200}})
        paths.setdefault(prefix + s.path, {})[s.method.lower()] = op
    components = {name: _refs_alone(c) for name, c in components.items()}
    _no_nul(components)
    _no_nul(paths)
    components["Error"] = _ERROR
    return {
        "openapi": "3.1.0",
        "info": {"title": "EDM dispatch engine control API", "version": "1"},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
    }
