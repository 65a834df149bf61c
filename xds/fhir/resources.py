"""R4B models for every resource in and out, and the JSON format (``application/fhir+json``).

The facade builds resources as plain JSON dicts and passes each through its
``fhir.resources.R4B`` model before it leaves: a shape R4 does not allow (an R5 element, a
missing required one) is a bug caught here, never sent.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from hashlib import blake2b
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from xds.fhir.errors import FhirError, Issue

__all__ = [
    "FHIR_JSON", "validated", "parse_resource", "fhir_response", "check_format",
    "check_content_type", "validation_issues",
]

FHIR_JSON = "application/fhir+json"
_JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "text/json"})
_XML_FORMATS = frozenset({"xml", "application/xml", "application/fhir+xml", "text/xml"})


def validated(resource: dict[str, Any]) -> dict[str, Any]:
    """``resource`` once its R4B model accepts it (raises ValueError when R4 refuses it).

    Validation is a pure function of the content, and the same codes, authors, patients and
    series come back in answer after answer, so what passed is remembered by digest and each
    resource is checked element by element: a searchset's entries one by one (and the Bundle
    without them), contained resources on their own, and of the rest only the top-level
    elements not seen before, with the resource's required ones (see ``_check``).
    """
    if resource.get("resourceType") == "Bundle" and resource.get("entry"):
        for entry in resource["entry"]:
            if "resource" in entry:
                validated(entry["resource"])
        _check(dict(resource, entry=[{k: v for k, v in e.items() if k != "resource"}
                                     for e in resource["entry"]]))
        return resource
    for inner in resource.get("contained") or ():
        _check(inner)
    _check({k: v for k, v in resource.items() if k != "contained"})
    return resource


_PASSED: OrderedDict[bytes, None] = OrderedDict()
_PASSED_MAX = 50_000
_PASSED_LOCK = threading.Lock()
#: Per resource type, the top-level elements its model requires.
_REQUIRED: dict[str, frozenset[str]] = {}
_MODELS: dict[str, Any] = {}
_GROUPS: dict[str, str] = {}
_CHOICE = re.compile(r"[a-z]*")


def _required(kind: str, model: Any) -> frozenset[str]:
    """Elements the model requires: pydantic's required fields and fhir-core's required
    primitives (``element_required``), by their JSON names."""
    if kind not in _REQUIRED:
        names = set()
        for name, info in model.model_fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            if info.is_required() or extra.get("element_required"):
                names.add(info.alias or name)
        _REQUIRED[kind] = frozenset(names)
    return _REQUIRED[kind]


def _model(kind: str) -> Any:
    model = _MODELS.get(kind)
    if model is None:
        model = _MODELS[kind] = get_fhir_model_class(kind)
    return model


def _group(key: str) -> str:
    """The choice-type group of an element name: its leading lower-case word."""
    name = _GROUPS.get(key)
    if name is None:
        name = _CHOICE.match(key).group(0) or key  # type: ignore[union-attr]
        if len(_GROUPS) < 10_000:
            _GROUPS[key] = name
    return name


def _check(resource: dict[str, Any]) -> None:
    """Validate the elements of ``resource`` that have not passed before.

    Elements of one resource are independent in the R4B models except the alternatives of a
    choice type (``deceasedBoolean``/``deceasedDateTime``), so elements are grouped by their
    leading lower-case word and a group is checked whole. The probe holds the fresh groups and
    the required elements, so it is a resource the model judges as it would the whole.
    """
    kind = resource["resourceType"]
    groups: dict[str, list[tuple[str, Any]]] = {}
    for key, value in resource.items():
        if key != "resourceType":
            groups.setdefault(_group(key), []).append((key, value))
    # repr, not json.dumps: several times faster, and an element built in another key order
    # is only checked once more.
    digests = {name: blake2b(repr((kind, members)).encode(), digest_size=16).digest()
               for name, members in groups.items()}
    model = _model(kind)
    required = _required(kind, model)
    with _PASSED_LOCK:
        fresh = [name for name, d in digests.items() if d not in _PASSED]
        if len(fresh) < len(digests):
            for d in digests.values():
                if d in _PASSED:
                    _PASSED.move_to_end(d)
    if not required <= resource.keys():
        fresh = list(groups)  # a required element is missing: the model says which
    if not fresh:
        return
    probe: dict[str, Any] = {"resourceType": kind}
    for name in fresh:
        probe.update(groups[name])
    for key in required:
        if key in resource:
            probe.setdefault(key, resource[key])
    try:
        model.model_validate(probe)
    except ValidationError as exc:
        raise ValueError(f"built an invalid {kind}: {exc}") from exc
    with _PASSED_LOCK:
        for name in fresh:
            _PASSED[digests[name]] = None
        while len(_PASSED) > _PASSED_MAX:
            _PASSED.popitem(last=False)


def validation_issues(exc: ValidationError, resource_type: str) -> list[Issue]:
    """One ``invalid`` issue per pydantic error, with the FHIRPath-like location."""
    issues = []
    for err in exc.errors()[:50]:
        path = ".".join(str(p) for p in (resource_type, *err["loc"]))
        issues.append(Issue("invalid", f"{path}: {err['msg']}", expression=path))
    return issues or [Issue("invalid", f"invalid {resource_type}")]


def parse_resource(body: bytes, expected: str | None = None) -> dict[str, Any]:
    """A request body checked as an R4B resource (``expected`` type if given).

    Raises FhirError 400 for malformed JSON or a body that is no resource, 422 (with every
    validation message) for a resource R4 does not allow.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FhirError(400, Issue("structure", f"the body is not JSON: {exc}")) from None
    if not isinstance(data, dict) or not isinstance(data.get("resourceType"), str):
        raise FhirError(400, Issue("structure", "the body is not a FHIR resource (no resourceType)"))
    kind = data["resourceType"]
    if expected and kind != expected:
        raise FhirError(400, Issue("invalid", f"expected a {expected}, got a {kind}"))
    try:
        model = get_fhir_model_class(kind)
    except (KeyError, ValueError, AttributeError):
        raise FhirError(400, Issue("not-supported", f"unknown resource type {kind}")) from None
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise FhirError(422, *validation_issues(exc, kind)) from None
    return data


def fhir_response(resource: dict[str, Any], status: int = 200,
                  headers: dict[str, str] | None = None, *, checked: bool = False) -> Response:
    """``resource`` as ``application/fhir+json`` (validated first unless ``checked``)."""
    body = resource if checked else validated(resource)
    return Response(json.dumps(body, ensure_ascii=False, separators=(",", ":")), status,
                    headers=headers, media_type=FHIR_JSON + "; charset=utf-8")


def check_format(request: Request) -> None:
    """406 unless the client takes JSON (``_format`` first, then ``Accept``)."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        base = fmt.split(";")[0].strip().lower()
        if base in _JSON_FORMATS:
            return
        raise FhirError(406, Issue("not-supported", f"_format={fmt} is not supported; this "
                                   "server speaks application/fhir+json only"))
    accept = request.headers.get("accept")
    if not accept:
        return
    for item in accept.split(","):
        media = item.split(";")[0].strip().lower()
        if media in _JSON_FORMATS or media in ("*/*", "application/*", ""):
            return
    if any(item.split(";")[0].strip().lower() in _XML_FORMATS for item in accept.split(",")):
        raise FhirError(406, Issue("not-supported", "XML is not supported; ask for "
                                   "application/fhir+json"))
    raise FhirError(406, Issue("not-supported", f"cannot answer in {accept}; this server "
                               "speaks application/fhir+json"))


def check_content_type(request: Request) -> None:
    """415 unless a request body is FHIR JSON."""
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if media not in ("application/fhir+json", "application/json"):
        raise FhirError(415, Issue("not-supported", f"Content-Type {media or '(none)'} is not "
                                   "supported; send application/fhir+json"))
