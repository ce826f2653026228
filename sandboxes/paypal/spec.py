"""PayPal's Payouts OpenAPI document (sandboxes/specs/paypal/), JSON Schema validators for
its schemas, and their errors in PayPal's ``details`` shape."""
from __future__ import annotations

import copy
import json
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema

SPEC_PATH = (Path(__file__).resolve().parent.parent / "specs" / "paypal"
             / "payments_payouts_batch_v1.json")


def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects -> JSON Schema draft 4: `nullable: true` admits null."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True:
        kind = out.get("type")
        if isinstance(kind, str):
            out["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            out["type"] = [*kind, "null"]
        if isinstance(out.get("enum"), list) and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
    return out


class OpenAPIDocument:
    """PayPal's Payouts OpenAPI document, with JSON Schema validators for its schemas."""

    def __init__(self, path: str | Path = SPEC_PATH):
        self.path = Path(path)
        self.raw: dict = json.loads(self.path.read_text(encoding="utf-8"))
        self._components = _openapi_to_jsonschema(copy.deepcopy(self.raw["components"]))
        self._validators: dict[str, jsonschema.Draft4Validator] = {}
        self._lock = threading.Lock()

    def operation(self, path: str, method: str) -> dict:
        return self.raw["paths"][path][method.lower()]

    def request_schema_ref(self, path: str, method: str) -> str:
        content = self.operation(path, method)["requestBody"]["content"]
        return content["application/json"]["schema"]["$ref"]

    def response_schema_ref(self, path: str, method: str, status: int | str) -> str:
        response = self.operation(path, method)["responses"][str(status)]
        return response["content"]["application/json"]["schema"]["$ref"]

    def request_example(self, path: str, method: str) -> dict:
        content = self.operation(path, method)["requestBody"]["content"]["application/json"]
        return copy.deepcopy(next(iter(content["examples"].values()))["value"])

    def schema(self, name: str) -> dict:
        return self._components["schemas"][name]

    def enum(self, name: str) -> tuple[str, ...]:
        return tuple(self.schema(name)["enum"])

    def parameter(self, name: str) -> dict:
        return self._components["parameters"][name]

    def validator(self, ref_or_name: str) -> jsonschema.Draft4Validator:
        """A validator for `#/components/...` (or a schema name), $refs resolved in place."""
        ref = ref_or_name if ref_or_name.startswith("#/") else (
            f"#/components/schemas/{ref_or_name}")
        with self._lock:
            found = self._validators.get(ref)
            if found is None:
                schema = _inline_refs({"$ref": ref}, self._components)
                jsonschema.Draft4Validator.check_schema(schema)
                found = self._validators[ref] = jsonschema.Draft4Validator(schema)
            return found

    def parameter_validator(self, name: str) -> jsonschema.Draft4Validator:
        return self.validator(f"#/components/parameters/{name}/schema")


def _inline_refs(node, components: dict, depth: int = 0):
    """The schema with every local $ref replaced by what it points at, so that validating
    15,000 items does not resolve the same references 30,000 times. (The Payouts schemas
    are not recursive; a depth guard keeps a future recursive one from looping.)"""
    if depth > 64:
        raise ValueError("schema references nest too deep (recursive schema?)")
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            target: object = components
            for part in ref[len("#/components/"):].split("/"):
                target = target[part.replace("~1", "/").replace("~0", "~")]
            return _inline_refs(target, components, depth + 1)
        return {k: _inline_refs(v, components, depth) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, components, depth) for v in node]
    return node


_DOCUMENTS: dict[Path, OpenAPIDocument] = {}
_DOCUMENTS_LOCK = threading.Lock()


def load_document(path: str | Path = SPEC_PATH) -> OpenAPIDocument:
    """The (cached) OpenAPI document at `path`."""
    key = Path(path).resolve()
    with _DOCUMENTS_LOCK:
        if key not in _DOCUMENTS:
            _DOCUMENTS[key] = OpenAPIDocument(key)
        return _DOCUMENTS[key]


# --------------------------------------------------------------------------------------
# Helpers


def field_name(parts) -> str:
    """A JSON path as PayPal names fields in error details: ``items[1].amount.value``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def issue_for(error: jsonschema.ValidationError) -> str:
    kind = error.validator
    if kind == "required":
        return "Required field is missing."
    if kind == "type":
        return f"Value must be of type {error.validator_value}."
    if kind == "maxItems":
        return f"Too many items: at most {error.validator_value} are allowed."
    if kind == "minItems":
        return f"Too few items: at least {error.validator_value} required."
    if kind == "maxLength":
        return f"Value is too long: at most {error.validator_value} characters."
    if kind == "minLength":
        return f"Value is too short: at least {error.validator_value} characters."
    if kind == "enum":
        return "Value is not one of the allowed values."
    if kind == "pattern":
        return "Value does not match the required format."
    if kind in ("maximum", "minimum"):
        return "Value is out of range."
    return f"Value is invalid ({kind})."


def schema_error_details(errors, location: str = "body") -> list[dict]:
    """jsonschema errors -> PayPal ``details`` entries, one per field."""
    details: list[dict] = []
    seen: set[str] = set()

    def order(error):
        return ([(0, p, "") if isinstance(p, int) else (1, 0, p) for p in error.absolute_path],
                error.validator)

    for error in sorted(errors, key=order):
        parts = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            missing = [p for p in error.validator_value if p not in error.instance]
            names = [field_name([*parts, m]) for m in missing] or [field_name(parts)]
        else:
            names = [field_name(parts)]
        for name in names:
            if name in seen:
                continue
            seen.add(name)
            detail = {"field": name, "location": location, "issue": issue_for(error)}
            if isinstance(error.instance, (str, int, Decimal)) and not isinstance(
                    error.instance, bool) and error.validator != "required":
                detail["value"] = str(error.instance)[:127]
            details.append(detail)
    return details
