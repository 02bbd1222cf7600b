"""HR: outbound webhook endpoints of the company and their delivery log (Standard Webhooks).

Managing endpoints (create, update, delete, rotate the secret) is for HR managers: an endpoint
receives personal data of leaving employees. HR specialists and auditors read endpoints and the
delivery log; specialists may send a test message and replay a delivery. Department heads: 403.
"""

from __future__ import annotations

import json

import marshmallow as ma
from flask.views import MethodView
from flask_smorest import Blueprint

from qianli.models import WEBHOOK_DELIVERY_STATUSES
from qianli.services import webhooks as svc

from api.auth import current_principal, hr_required
from api.context import db, runtime
from api.schemas import StrictSchema

__all__ = ["blp"]

blp = Blueprint("webhooks", __name__, url_prefix="/api/v1/hr/webhooks",
                description="Outbound webhooks (Standard Webhooks): endpoints and deliveries (HR)")

READERS = ("hr_specialist", "auditor", "hr_manager")
EVENTS = list(svc.SUBSCRIBABLE_EVENTS)


class EndpointSchema(ma.Schema):
    id = ma.fields.String(required=True)
    name = ma.fields.String(required=True, metadata={"description": "The system behind the endpoint (门禁, OA, 薪资...); "
                                                                    "revocations are confirmed per system"})
    url = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    event_types = ma.fields.List(ma.fields.String(), required=True)
    enabled = ma.fields.Boolean(required=True)
    secret_rotated_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    previous_secret_valid_until = ma.fields.AwareDateTime(
        allow_none=True, required=True, attribute="previous_secret_until",
        metadata={"description": "After a rotation, deliveries are signed with both secrets until then"})
    created_by = ma.fields.String(required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    updated_at = ma.fields.AwareDateTime(required=True)
    failing_since = ma.fields.AwareDateTime(allow_none=True, required=True, metadata={
        "description": "Every attempt to the endpoint has failed since then (null once one succeeds); failing for "
                       "QIANLI_WEBHOOK_DISABLE_AFTER_S disables it"})
    disabled_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    disabled_reason = ma.fields.String(allow_none=True, required=True, metadata={
        "description": "manual (HR disabled it) or failing (disabled automatically after failing for "
                       "QIANLI_WEBHOOK_DISABLE_AFTER_S; HR re-enables it with updateWebhookEndpoint enabled=true)"})
    disabled_by = ma.fields.String(allow_none=True, required=True, metadata={"description": "hr:<id> or system"})


class EndpointEventSchema(ma.Schema):
    action = ma.fields.String(required=True, metadata={
        "description": "created, updated, disabled, enabled, auto_disabled, secret_rotated, deleted"})
    actor = ma.fields.String(required=True)
    detail = ma.fields.Dict(required=True, metadata={
        "description": "auto_disabled: failing_since, disable_after_s, failed_deliveries, failed_attempts, the last "
                       "delivery and its error; enabled: what it was disabled for and the alerts resolved"})
    occurred_at = ma.fields.AwareDateTime(required=True)


class EndpointDetailSchema(EndpointSchema):
    history = ma.fields.List(ma.fields.Nested(EndpointEventSchema), required=True, metadata={
        "description": "The endpoint's audit trail, newest first (at most 100 entries)"})


class EndpointWithSecretSchema(EndpointSchema):
    secret = ma.fields.String(required=True, metadata={
        "description": "The signing secret (whsec_...), shown only now: store it in the receiver"})


class EndpointInSchema(StrictSchema):
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    url = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000),
                           metadata={"description": "http(s) URL; in production a public address (SSRF guard)"})
    description = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))
    event_types = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(EVENTS)), required=True,
                                 validate=ma.validate.Length(min=1, max=len(EVENTS)))
    enabled = ma.fields.Boolean(load_default=True)


class EndpointPatchSchema(StrictSchema):
    name = ma.fields.String(validate=ma.validate.Length(min=1, max=100))
    url = ma.fields.String(validate=ma.validate.Length(min=1, max=2000))
    description = ma.fields.String(validate=ma.validate.Length(max=500))
    event_types = ma.fields.List(ma.fields.String(validate=ma.validate.OneOf(EVENTS)),
                                 validate=ma.validate.Length(min=1, max=len(EVENTS)))
    enabled = ma.fields.Boolean()


class AttemptSchema(ma.Schema):
    attempt = ma.fields.Integer(required=True)
    trigger = ma.fields.String(required=True, metadata={"description": "auto (first try or a retry) or replay"})
    actor = ma.fields.String(required=True)
    started_at = ma.fields.AwareDateTime(required=True)
    latency_ms = ma.fields.Integer(allow_none=True, required=True)
    status_code = ma.fields.Integer(allow_none=True, required=True)
    ok = ma.fields.Boolean(required=True)
    error = ma.fields.String(allow_none=True, required=True)
    response_excerpt = ma.fields.String(allow_none=True, required=True)
    next_retry_at = ma.fields.AwareDateTime(allow_none=True, required=True)


class DeliverySchema(ma.Schema):
    id = ma.fields.String(required=True)
    webhook_id = ma.fields.String(required=True, metadata={"description": "The webhook-id header: the same on every "
                                                                          "attempt and replay"})
    event_type = ma.fields.String(required=True)
    event_id = ma.fields.String(allow_none=True, required=True)
    case_id = ma.fields.String(allow_none=True, required=True)
    endpoint_id = ma.fields.String(required=True)
    endpoint_name = ma.fields.String(required=True)
    status = ma.fields.String(required=True, metadata={"description": "pending (first try or retrying), succeeded, failed"})
    attempts = ma.fields.Integer(required=True)
    next_attempt_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    last_status_code = ma.fields.Integer(allow_none=True, required=True)
    last_error = ma.fields.String(allow_none=True, required=True)
    created_at = ma.fields.AwareDateTime(required=True)
    finished_at = ma.fields.AwareDateTime(allow_none=True, required=True)
    payload = ma.fields.Dict(required=True, metadata={"description": "The body sent (confirmation tokens redacted)"})
    attempt_log = ma.fields.List(ma.fields.Nested(AttemptSchema), required=True)


class DeliveryPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(DeliverySchema), required=True)
    total = ma.fields.Integer(required=True)
    page = ma.fields.Integer(required=True)
    page_size = ma.fields.Integer(required=True)


class DeliveryQuery(StrictSchema):
    endpoint_id = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=32))
    status = ma.fields.String(load_default=None, validate=ma.validate.OneOf(WEBHOOK_DELIVERY_STATUSES))
    event_type = ma.fields.String(load_default=None, validate=ma.validate.OneOf(list(svc.EVENT_TYPES)))
    case_id = ma.fields.String(load_default=None, validate=ma.validate.Length(min=1, max=32))
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100000))
    page_size = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=200))


class EventTypeSchema(ma.Schema):
    type = ma.fields.String(required=True)
    description = ma.fields.String(required=True)


def _redacted(body: str) -> dict:
    data = json.loads(body)
    conf = (data.get("data") or {}).get("confirmation")
    if isinstance(conf, dict) and "token" in conf:
        conf["token"] = "***"
    return data


def delivery_dict(d, ep, attempts) -> dict:
    return {"id": d.id, "webhook_id": d.msg_id, "event_type": d.event_type, "event_id": d.event_id,
            "case_id": d.case_id, "endpoint_id": ep.id, "endpoint_name": ep.name, "status": d.status,
            "attempts": d.attempts, "next_attempt_at": d.next_attempt_at, "last_status_code": d.last_status_code,
            "last_error": d.last_error, "created_at": d.created_at, "finished_at": d.finished_at,
            "payload": _redacted(d.body), "attempt_log": attempts}


def _created(c: svc.CreatedEndpoint) -> dict:
    ep = c.endpoint
    fields = ("id", "name", "url", "description", "event_types", "enabled", "secret_rotated_at",
              "previous_secret_until", "created_by", "created_at", "updated_at", "failing_since", "disabled_at",
              "disabled_reason", "disabled_by")
    return {**{f: getattr(ep, f) for f in fields}, "secret": c.secret}


@blp.route("/event-types")
class EventTypes(MethodView):
    @hr_required(*READERS)
    @blp.response(200, EventTypeSchema(many=True))
    @blp.doc(operationId="listWebhookEventTypes", summary="The event types an endpoint may subscribe to")
    def get(self):
        return [{"type": t, "description": svc.EVENT_TYPES[t]} for t in svc.SUBSCRIBABLE_EVENTS]


@blp.route("/endpoints")
class Endpoints(MethodView):
    @hr_required(*READERS)
    @blp.response(200, EndpointSchema(many=True))
    @blp.doc(operationId="listWebhookEndpoints", summary="The company's webhook endpoints (secrets are never shown)")
    def get(self):
        return svc.list_endpoints(db(), current_principal().company_id)

    @hr_required("hr_manager")
    @blp.arguments(EndpointInSchema)
    @blp.response(201, EndpointWithSecretSchema)
    @blp.doc(operationId="createWebhookEndpoint", summary="Add a webhook endpoint; the answer shows its secret once",
             description="The server generates the signing secret (Standard Webhooks, whsec_<base64>). Deliveries "
                         "carry webhook-id, webhook-timestamp and webhook-signature headers. 422 webhook_url_invalid / "
                         "webhook_url_forbidden (not http(s), credentials in the URL, or a private address in "
                         "production), webhook_event_unknown; 409 webhook_name_taken.")
    def post(self, args):
        p = current_principal()
        return _created(svc.create_endpoint(db(), runtime(), company_id=p.company_id, actor=f"hr:{p.subject_id}",
                                            **args))


@blp.route("/endpoints/<string:endpoint_id>")
class Endpoint(MethodView):
    @hr_required(*READERS)
    @blp.response(200, EndpointDetailSchema)
    @blp.doc(operationId="getWebhookEndpoint", summary="One endpoint, with its audit trail (who changed, disabled or "
                                                        "re-enabled it, and when the system disabled it for failing)")
    def get(self, endpoint_id):
        ep = svc.get_endpoint(db(), current_principal().company_id, endpoint_id)
        return {**{f: getattr(ep, f) for f in EndpointSchema().fields if f != "previous_secret_valid_until"},
                "previous_secret_until": ep.previous_secret_until, "history": svc.endpoint_history(db(), ep)}

    @hr_required("hr_manager")
    @blp.arguments(EndpointPatchSchema)
    @blp.response(200, EndpointSchema)
    @blp.doc(operationId="updateWebhookEndpoint", summary="Change an endpoint's URL, name, events or enable/disable it",
             description="enabled=true re-enables an endpoint disabled by HR or automatically (disabled_reason "
                         "failing: every attempt failed for QIANLI_WEBHOOK_DISABLE_AFTER_S); its failure streak "
                         "starts afresh and the webhook_endpoint_disabled alert is resolved. Failed deliveries are "
                         "not re-sent by themselves: replay them (replayWebhookDelivery).")
    def patch(self, args, endpoint_id):
        p = current_principal()
        return svc.update_endpoint(db(), runtime(), p.company_id, endpoint_id, actor=f"hr:{p.subject_id}", **args)

    @hr_required("hr_manager")
    @blp.response(204)
    @blp.doc(operationId="deleteWebhookEndpoint", summary="Delete an endpoint (its delivery log stays)")
    def delete(self, endpoint_id):
        p = current_principal()
        svc.delete_endpoint(db(), p.company_id, endpoint_id, actor=f"hr:{p.subject_id}")


@blp.route("/endpoints/<string:endpoint_id>/rotate-secret")
class RotateSecret(MethodView):
    @hr_required("hr_manager")
    @blp.response(200, EndpointWithSecretSchema)
    @blp.doc(operationId="rotateWebhookSecret", summary="New signing secret, shown once; the previous one keeps "
                                                         "signing for QIANLI_WEBHOOK_SECRET_GRACE_S")
    def post(self, endpoint_id):
        p = current_principal()
        return _created(svc.rotate_secret(db(), runtime(), p.company_id, endpoint_id, actor=f"hr:{p.subject_id}"))


@blp.route("/endpoints/<string:endpoint_id>/test")
class TestEndpoint(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.response(202, DeliverySchema)
    @blp.doc(operationId="sendTestWebhook", summary="Send a webhook.test message to the endpoint now")
    def post(self, endpoint_id):
        p = current_principal()
        d = svc.send_test_event(db(), runtime(), p.company_id, endpoint_id, actor=f"hr:{p.subject_id}")
        return delivery_dict(d, svc.get_endpoint(db(), p.company_id, endpoint_id), [])


@blp.route("/deliveries")
class Deliveries(MethodView):
    @hr_required(*READERS)
    @blp.arguments(DeliveryQuery, location="query")
    @blp.response(200, DeliveryPageSchema)
    @blp.doc(operationId="listWebhookDeliveries", summary="The delivery log: every event sent, each attempt with "
                                                           "status code, latency, error and next retry")
    def get(self, args):
        rows, total = svc.list_deliveries(db(), current_principal().company_id, **args)
        return {"items": [delivery_dict(*r) for r in rows], "total": total, "page": args["page"],
                "page_size": args["page_size"]}


@blp.route("/deliveries/<string:delivery_id>/replay")
class Replay(MethodView):
    @hr_required("hr_specialist", "hr_manager")
    @blp.response(202, DeliverySchema)
    @blp.doc(operationId="replayWebhookDelivery", summary="Send a delivery again now (same webhook-id and body)",
             description="For a failed delivery after the receiver is fixed, or to re-send one. 409 "
                         "webhook_delivery_in_flight while an attempt runs; 409 webhook_endpoint_deleted.")
    def post(self, delivery_id):
        p = current_principal()
        d, ep = svc.replay_delivery(db(), runtime(), p.company_id, delivery_id, actor=f"hr:{p.subject_id}")
        return delivery_dict(d, ep, [])
