"""Schemas of the account's data-subject requests (oversight API): list, detail, decisions."""

from __future__ import annotations

import marshmallow as ma

from privacy.dsr import deadlines
from privacy.dsr import reminders
from privacy.dsr.models import KINDS
from privacy.dsr.models import STATES
from privacy.dsr.services import EXCEPTIONS
from privacy.schemas import PageArgsSchema
from privacy.schemas import StrictSchema
from privacy.schemas import page_schema

MAX_REASON = 2000


class RequestListArgsSchema(PageArgsSchema):
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(STATES))
    kind = ma.fields.String(load_default=None, validate=ma.validate.OneOf(KINDS))
    overdue = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "true: only open requests past their due date"},
    )
    due_within_days = ma.fields.Integer(
        load_default=None,
        validate=ma.validate.Range(min=1, max=365),
        metadata={"description": "only open requests due within this many days (or overdue)"},
    )


class RequestSchema(ma.Schema):
    id = ma.fields.UUID(attribute="public_id")
    subject_request_id = ma.fields.UUID(metadata={"description": "the controller's id"})
    kind = ma.fields.String()
    source = ma.fields.String(metadata={"description": "opendsr or form"})
    status = ma.fields.String()
    opendsr_status = ma.fields.String()
    received_at = ma.fields.DateTime()
    due_at = ma.fields.DateTime()
    extended_at = ma.fields.DateTime(allow_none=True)
    completed_at = ma.fields.DateTime(allow_none=True)
    overdue = ma.fields.Function(
        lambda request: reminders.is_overdue(request),
        metadata={"type": "boolean", "description": "open and past its due date"},
    )


class EventSchema(ma.Schema):
    at = ma.fields.DateTime()
    actor = ma.fields.String()
    action = ma.fields.String()
    status = ma.fields.String()
    note = ma.fields.String(allow_none=True)


class InstructionSchema(ma.Schema):
    id = ma.fields.UUID(attribute="public_id")
    target_name = ma.fields.String()
    kind = ma.fields.String(attribute="target_kind")
    region = ma.fields.String(allow_none=True)
    state = ma.fields.String(metadata={"description": "pending or confirmed"})
    confirmed_at = ma.fields.DateTime(allow_none=True)


class CallbackSchema(ma.Schema):
    url = ma.fields.String()
    status = ma.fields.String(metadata={"description": "the OpenDSR status sent"})
    state = ma.fields.String(metadata={"description": "pending, delivered or failed"})
    attempts = ma.fields.Integer()
    last_error = ma.fields.String(allow_none=True)
    delivered_at = ma.fields.DateTime(allow_none=True)


class RequestDetailSchema(RequestSchema):
    submitted_at = ma.fields.DateTime()
    extension_reason = ma.fields.String(allow_none=True)
    reason = ma.fields.String(allow_none=True, metadata={"description": "why it was refused"})
    exception = ma.fields.String(
        allow_none=True, metadata={"description": "the Art. 17(3) point (a-e) of a refusal"}
    )
    no_data_held = ma.fields.Boolean()
    email = ma.fields.String(
        attribute="requester_email",
        allow_none=True,
        metadata={"description": "the requester's e-mail, for admins only; null otherwise"},
    )
    message = ma.fields.String(
        attribute="requester_message",
        allow_none=True,
        metadata={
            "description": "what the requester wrote in the public form, for admins only; "
            "null otherwise"
        },
    )
    history = ma.fields.List(ma.fields.Nested(EventSchema), attribute="events")
    instructions = ma.fields.List(ma.fields.Nested(InstructionSchema))
    callbacks = ma.fields.List(
        ma.fields.Nested(CallbackSchema), attribute="callback_deliveries", dump_default=()
    )


class ExtensionSchema(StrictSchema):
    months = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=deadlines.MAX_EXTENSION_MONTHS),
        metadata={"description": "1 or 2 months beyond the first"},
    )
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=MAX_REASON))


class RejectionSchema(StrictSchema):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=MAX_REASON))


class ExceptionSchema(StrictSchema):
    point = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(sorted(EXCEPTIONS)),
        metadata={
            "description": "Art. 17(3) point: "
            + "; ".join(f"{k}) {v}" for k, v in sorted(EXCEPTIONS.items()))
        },
    )
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=MAX_REASON))


RequestPageSchema = page_schema(RequestSchema, "RequestPage")
