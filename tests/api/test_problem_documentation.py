"""Errors are problem+json, and the OpenAPI document says so on every operation (issue 11:
19 operations did not); a 405 names the methods the resource takes."""
from __future__ import annotations

HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


def test_every_operation_documents_its_errors_as_problem_json(client):
    document = client.get("/v1/openapi.json").get_json()
    responses = document["components"]["responses"]
    undocumented = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            default = operation["responses"].get("default", {})
            name = default.get("$ref", "").rsplit("/", 1)[-1]
            if "application/problem+json" not in responses.get(name, {}).get("content", {}):
                undocumented.append((method, path))
    assert undocumented == []
    problem = document["components"]["schemas"]["Problem"]["properties"]
    assert {"type", "status", "title", "detail", "errors"} <= set(problem)


def test_trace_answers_405_with_an_allow_header(client):
    response = client.open("/v1/health", method="TRACE")
    assert response.status_code == 405
    assert response.mimetype == "application/problem+json"
    assert set(response.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}
