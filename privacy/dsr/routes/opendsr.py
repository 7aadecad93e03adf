"""The OpenDSR v2 processor API under /opendsr/v1 (and the legacy OpenGDPR paths).

Controllers (the customer accounts) authenticate with their API tokens. Answers are signed
and errors take the spec's shape (privacy.dsr.opendsr, the wire format); the routes are
described for the API document here, since flask-smorest cannot derive them.
"""

from __future__ import annotations

import copy
import json
import uuid

from flask import Blueprint
from flask import Response
from flask import g
from flask import request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from privacy import jobs
from privacy import links
from privacy.auth.permissions import public
from privacy.auth.permissions import requires
from privacy.database import BUSY_RETRY_AFTER
from privacy.database import is_busy
from privacy.dsr import package
from privacy.dsr import services
from privacy.dsr import signing
from privacy.dsr.models import KINDS
from privacy.dsr.models import OPENDSR_STATUS
from privacy.dsr.opendsr import API_VERSION
from privacy.dsr.opendsr import IDENTITIES
from privacy.dsr.opendsr import MAX_CALLBACKS
from privacy.dsr.opendsr import MAX_SUBMITTED_AGE
from privacy.dsr.opendsr import PREFIX
from privacy.dsr.opendsr import UUID4
from privacy.dsr.opendsr import OpenDsrError
from privacy.dsr.opendsr import cancelled_body
from privacy.dsr.opendsr import created_body
from privacy.dsr.opendsr import parse
from privacy.dsr.opendsr import signed
from privacy.dsr.opendsr import status_body
from privacy.errors import AppError
from privacy.errors import ServiceUnavailable
from privacy.errors import report_server_error
from privacy.extensions import api
from privacy.extensions import db

bp = Blueprint("opendsr", __name__)


@bp.errorhandler(HTTPException)
@bp.errorhandler(AppError)  # Flask files AppError's handler under its code 400: match it
def spec_error(error: HTTPException):
    """Every error of these routes, unexpected ones included, in the spec's shape and signed:
    a controller never has to parse an HTML page."""
    if error.code is None:
        raise error
    if error.code >= 500:
        report_server_error(error)
    reasons = getattr(error, "reasons", None) or []
    data = getattr(error, "data", None) or {}
    message = data.get("message") or error.description
    payload = {
        "error": {
            "code": error.code,
            "message": message,
            "errors": [
                {"domain": "OpenDSR", "reason": reason, "message": text} for reason, text in reasons
            ]
            or [
                {
                    "domain": "OpenDSR",
                    "reason": error.name.lower().replace(" ", "_"),
                    "message": message,
                }
            ],
        }
    }
    extra = {}
    existing = getattr(error, "existing", None)
    if existing is not None:
        payload["error"]["subject_request_id"] = str(existing.subject_request_id)
        extra["Location"] = f"{PREFIX}/requests/{existing.subject_request_id}"
    extra.update(dict(data.get("headers") or {}))
    return signed(payload, error.code, extra)


@bp.errorhandler(OperationalError)
def busy(error: OperationalError):
    """A busy database answers 503 with Retry-After here too, in the spec's signed shape."""
    if not is_busy(error):
        raise error
    db.session.rollback()
    return spec_error(
        ServiceUnavailable(
            "The database is busy; retry shortly.",
            headers={"Retry-After": str(BUSY_RETRY_AFTER)},
        )
    )


# -- discovery ---------------------------------------------------------------------------


@bp.get(f"{PREFIX}/discovery")
@bp.get("/discovery")
@public
def discovery():
    base = links.base_url()
    return signed(
        {
            "api_version": API_VERSION,
            "supported_identities": IDENTITIES,
            "supported_subject_request_types": list(KINDS),
            "processor_certificate": f"{base}{PREFIX}/certificate",
        },
        200,
    )


@bp.get(f"{PREFIX}/certificate")
@public
def certificate():
    return Response(signing.get().certificate_pem, mimetype="application/x-pem-file")


@bp.get(f"{PREFIX}/schemas/access-package.json")
@public
def access_package_schema():
    """The JSON Schema of access and portability packages (the portability format)."""
    return Response(json.dumps(package.schema(), indent=2), mimetype="application/schema+json")


# -- requests ----------------------------------------------------------------------------


@bp.post(f"{PREFIX}/requests")
@bp.post("/opengdpr_requests")
@requires("requests:write")
def create_request():
    """Take a controller's request; it needs no further identity check and starts at once."""
    raw = request.get_data(cache=False)
    data = parse(raw)
    if data["kind"] == "erasure":
        g.authority.check("requests:erase")
    dsr = services.submit(
        g.account,
        source="opendsr",
        verified="authenticated controller",
        actor=g.actor,
        **data,
    )
    jobs.after_commit("dsr.process", dsr.id)
    answer = created_body(dsr, raw)  # before the commit, which would expire what it reads
    db.session.commit()
    return signed(answer, 201)


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise OpenDsrError(
            "Not a request id.", [("invalid_subject_request_id", "Send a UUID.")]
        ) from None


@bp.get(f"{PREFIX}/requests/<subject_request_id>")
@bp.get("/opengdpr_requests/<subject_request_id>")
@requires("requests:read")
def get_request(subject_request_id: str):
    dsr = services.get_by_subject_request_id(g.account, _uuid(subject_request_id))
    return signed(status_body(dsr), 200)


@bp.delete(f"{PREFIX}/requests/<subject_request_id>")
@bp.delete("/opengdpr_requests/<subject_request_id>")
@requires("requests:write")
def cancel_request(subject_request_id: str):
    """Cancel while pending (202); once work started, 409. A request the data subject made
    through the public form is theirs to withdraw: cancelling it needs the admin's
    `requests:manage`."""
    dsr = services.get_by_subject_request_id(g.account, _uuid(subject_request_id), for_update=True)
    if dsr.source != "opendsr":
        g.authority.check("requests:manage")
    services.cancel(g.account, dsr, actor=g.actor)
    db.session.commit()
    return signed(cancelled_body(dsr), 202)


# -- the OpenAPI description ---------------------------------------------------------------
# These routes answer signed bytes in the spec's own shapes, so flask-smorest cannot derive
# them: they are described here, once, for the API document (and the fuzzer that reads it).

_UUID4 = {"type": "string", "format": "uuid", "pattern": UUID4.pattern}
# A status or cancel names any UUID (uuid.UUID's forms: hex with or without hyphens).
_ANY_UUID = r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
_TIME = {"type": "string", "format": "date-time"}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "errors"],
            "properties": {
                "code": {"type": "integer"},
                "message": {"type": "string"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["domain", "reason", "message"],
                        "properties": {
                            "domain": {"type": "string"},
                            "reason": {"type": "string"},
                            "message": {"type": "string"},
                        },
                    },
                },
                "subject_request_id": {
                    "type": "string",
                    "description": "on a duplicate: the request already taken",
                },
            },
        }
    },
}
_REQUEST = {
    "type": "object",
    "required": [
        "subject_request_id",
        "subject_request_type",
        "submitted_time",
        "subject_identities",
    ],
    "properties": {
        "regulation": {"type": "string", "enum": ["gdpr"], "default": "gdpr"},
        "subject_request_id": {**_UUID4, "description": "the controller's id, a UUID v4"},
        "subject_request_type": {"type": "string", "enum": list(KINDS)},
        "submitted_time": {
            **_TIME,
            "description": "when the controller received it: not in the future (5 minutes "
            f"of clock skew allowed), not more than {MAX_SUBMITTED_AGE.days} days ago",
        },
        "subject_identities": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["identity_type", "identity_value"],
                "properties": {
                    "identity_type": {
                        "type": "string",
                        "enum": ["email", "controller_customer_id"],
                    },
                    "identity_value": {"type": "string", "minLength": 1, "maxLength": 320},
                    "identity_format": {"type": "string", "enum": ["raw", "sha256"]},
                },
            },
        },
        "status_callback_urls": {
            "type": "array",
            "maxItems": MAX_CALLBACKS,
            "items": {"type": "string", "format": "uri", "maxLength": 2000},
        },
    },
}
_CREATED = {
    "type": "object",
    "required": [
        "controller_id",
        "expected_completion_time",
        "received_time",
        "encoded_request",
        "subject_request_id",
        "processor_signature",
    ],
    "properties": {
        "controller_id": {"type": "string"},
        "expected_completion_time": _TIME,
        "received_time": _TIME,
        "encoded_request": {"type": "string", "format": "byte"},
        "subject_request_id": {"type": "string"},
        "processor_signature": {"type": "string"},
    },
}
_STATUS = {
    "type": "object",
    "required": [
        "controller_id",
        "expected_completion_time",
        "subject_request_id",
        "request_status",
    ],
    "properties": {
        "controller_id": {"type": "string"},
        "expected_completion_time": _TIME,
        "subject_request_id": {"type": "string"},
        "request_status": {
            "type": "string",
            "enum": sorted(set(OPENDSR_STATUS.values())),
        },
        "results_url": {"type": "string", "format": "uri"},
        "results_count": {"type": "integer", "minimum": 0},
    },
}
_CANCELLED = {
    "type": "object",
    "required": ["controller_id", "received_time", "subject_request_id", "processor_signature"],
    "properties": {
        "controller_id": {"type": "string"},
        "received_time": _TIME,
        "subject_request_id": {"type": "string"},
        "processor_signature": {"type": "string"},
    },
}
_DISCOVERY = {
    "type": "object",
    "required": [
        "api_version",
        "supported_identities",
        "supported_subject_request_types",
        "processor_certificate",
    ],
    "properties": {
        "api_version": {"type": "string"},
        "supported_identities": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "identity_type": {"type": "string"},
                    "identity_format": {"type": "string"},
                },
            },
        },
        "supported_subject_request_types": {"type": "array", "items": {"type": "string"}},
        "processor_certificate": {"type": "string", "format": "uri"},
    },
}
_SIGNATURE_HEADERS = {
    "X-OpenDSR-Signature": {
        "description": "base64 RSA-SHA256 signature of the body, by the processor certificate",
        "schema": {"type": "string"},
    },
}


def _json(description: str, schema: dict, *, signed: bool = True) -> dict:
    answer = {"description": description, "content": {"application/json": {"schema": schema}}}
    if signed:
        answer["headers"] = _SIGNATURE_HEADERS
    return answer


def _errors(*codes: int) -> dict:
    texts = {
        400: "the request or the id is not valid (the spec's error object)",
        401: "no valid API token",
        403: "the token lacks the requests scope or role (erasure needs an admin)",
        404: "no request of this account has this id",
        409: "the id was already used, or the request can no longer be cancelled",
        500: "an unexpected failure, still signed and in the spec's shape",
        503: "the database is busy: try again after Retry-After",
    }
    return {str(code): _json(texts[code], _ERROR) for code in codes}


def operations() -> dict[str, dict[str, dict]]:
    """endpoint -> method -> its OpenAPI operation."""
    tag = {"tags": ["OpenDSR"]}
    public_get = {**tag, "security": []}
    return {
        "opendsr.discovery": {
            "get": {
                **public_get,
                "summary": "What this processor supports, and where its certificate is",
                "responses": {"200": _json("the discovery document", _DISCOVERY)},
            }
        },
        "opendsr.certificate": {
            "get": {
                **public_get,
                "summary": "The certificate that verifies every signature",
                "responses": {
                    "200": {
                        "description": "PEM",
                        "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "opendsr.access_package_schema": {
            "get": {
                **public_get,
                "summary": "The JSON Schema of access and portability packages",
                "responses": {
                    "200": {
                        "description": "JSON Schema",
                        "content": {"application/schema+json": {"schema": {"type": "object"}}},
                    }
                },
            }
        },
        "opendsr.create_request": {
            "post": {
                **tag,
                "summary": "Submit a data subject request (erasure needs an admin token)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _REQUEST}},
                },
                "responses": {
                    "201": _json("taken", _CREATED),
                    **_errors(400, 401, 403, 409, 500, 503),
                },
            }
        },
        "opendsr.get_request": {
            "get": {
                **tag,
                "summary": "A request's status",
                "responses": {
                    "200": _json("its status", _STATUS),
                    **_errors(400, 401, 403, 404, 500, 503),
                },
            }
        },
        "opendsr.cancel_request": {
            "delete": {
                **tag,
                "summary": "Cancel a pending request (a public-form request needs an admin)",
                "responses": {
                    "202": _json("cancelled", _CANCELLED),
                    **_errors(400, 401, 403, 404, 409, 500, 503),
                },
            }
        },
    }


def describe(spec, rules) -> None:
    """Add the OpenDSR routes (and the legacy OpenGDPR ones) to the API document."""
    spec.tag({"name": "OpenDSR", "description": "The OpenDSR v2 processor API (signed answers)."})
    described = operations()
    id_param = {
        "name": "subject_request_id",
        "in": "path",
        "required": True,
        "description": "the controller's subject_request_id",
        "schema": {"type": "string", "format": "uuid", "pattern": _ANY_UUID},
    }
    for rule in rules:
        if rule.endpoint in described:
            described_here = copy.deepcopy(described[rule.endpoint])
            if "subject_request_id" in rule.arguments:
                for operation in described_here.values():
                    operation["parameters"] = [id_param]
            spec.path(rule=rule, operations=described_here)


@bp.record_once
def _document(state) -> None:
    """On registration (the routes are in place by now): the app's API document, set up
    before the blueprints, gains these."""
    if getattr(api, "spec", None) is not None:
        describe(api.spec, state.app.url_map.iter_rules())
