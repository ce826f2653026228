"""The published OpenAPI document: served at /v1/openapi.json, OpenAPI 3, and it lists
every route of the public contract (and every route the app serves)."""
from __future__ import annotations

CONTRACT = {
    ("get", "/v1/health"),
    ("put", "/v1/retailers/{slug}"),
    ("post", "/v1/share-rules"),
    ("put", "/v1/members/{external_id}"),
    ("post", "/v1/members/import"),
    ("get", "/v1/members/{external_id}/balance"),
    ("get", "/v1/members/{external_id}/statement"),
    ("post", "/v1/reports"),
    ("get", "/v1/reports/{report_id}"),
}
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


def spec(client) -> dict:
    response = client.get("/v1/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    return response.get_json()


def operations(document: dict) -> set[tuple[str, str]]:
    return {(method, path) for path, item in document["paths"].items()
            for method in item if method in HTTP_METHODS}


def test_the_openapi_document_is_served_without_a_key_and_is_openapi_3(client):
    document = spec(client)
    assert document["openapi"].startswith("3.")
    assert document["info"]["version"] == "v1" and document["info"]["title"]


def test_the_openapi_document_lists_every_route_of_the_contract(client):
    assert CONTRACT <= operations(spec(client))


def test_the_openapi_document_lists_every_route_the_app_serves(app, client):
    served = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/v1/") or rule.rule.startswith(("/v1/openapi",
                                                                       "/v1/docs")):
            continue
        path = rule.rule.replace("<int:", "{").replace("<", "{").replace(">", "}")
        served |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert served == operations(spec(client))


# Callbacks from providers carry no API key of ours (PayPal signs them instead).
# Liveness and readiness answer load balancers, which hold no key.
UNAUTHENTICATED = {"/v1/health", "/v1/ready", "/v1/webhooks/paypal"}


def test_every_route_but_health_and_provider_callbacks_requires_a_bearer_key_in_the_document(
        client):
    document = spec(client)
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer"}
    assert document["security"] == [{"bearer": []}]
    for method, path in operations(document):
        operation = document["paths"][path][method]
        if path in UNAUTHENTICATED:
            assert operation["security"] == []
        else:
            assert operation.get("security", document["security"]) == [{"bearer": []}]


def test_the_report_upload_documents_every_accepted_media_type(client):
    body = spec(client)["paths"]["/v1/reports"]["post"]["requestBody"]["content"]
    assert {"text/csv", "application/json", "application/x-ndjson",
            "multipart/form-data"} <= set(body)


def test_the_report_upload_documents_its_query_parameters(client):
    parameters = spec(client)["paths"]["/v1/reports"]["post"]["parameters"]
    by_name = {p["name"]: p for p in parameters if p["in"] == "query"}
    assert {"format", "source", "as_of"} <= set(by_name)
    assert set(by_name["format"]["schema"]["enum"]) == {"generic", "cj", "impact", "awin",
                                                        "rakuten"}


def test_health_answers_without_a_key(client):
    response = client.get("/v1/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
