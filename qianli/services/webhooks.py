"""Outbound webhooks per company, signed with the Standard Webhooks scheme (https://www.standardwebhooks.com).

* **Endpoints** (:func:`create_endpoint` ... :func:`rotate_secret`): a URL, the system behind it, the
  event types it subscribes to, enabled or not, and a server-generated secret ``whsec_<base64>``
  shown once (at creation and at each rotation). After a rotation deliveries carry two signatures
  (new and previous secret) for ``QIANLI_WEBHOOK_SECRET_GRACE_S`` so a receiver can switch over.
* **Fan-out** (:func:`fan_out`): an event of the transactional outbox becomes one delivery row per
  subscribed endpoint, in the publisher's transaction; the rq jobs are enqueued after it commits.
  The body (``{"type", "timestamp", "data"}``) is frozen then, and the delivery's ``msg_id`` is the
  ``webhook-id`` of every attempt, so receivers deduplicate retries and replays.
* **Delivery** (:func:`attempt_delivery`, run by ``jobs.webhooks``): a POST with the headers
  ``webhook-id``, ``webhook-timestamp``, ``webhook-signature``; 2xx is success, anything else
  (other status, redirect, timeout, refused address) a failed attempt, retried after the delays of
  ``QIANLI_WEBHOOK_RETRY_SCHEDULE``; after the last one the delivery is failed, HR is alerted and,
  for a case, the evidence says so. Every attempt is logged (status, latency, error, next retry).
* **Auto-disable**: an endpoint remembers since when every attempt to it has failed (``failing_since``,
  cleared by any success). When a delivery fails for good and that is ``QIANLI_WEBHOOK_DISABLE_AFTER_S``
  (5 days) or longer ago, the endpoint is disabled (``disabled_reason`` ``failing``), the audit trail
  (``webhook_endpoint_events``) records why, and HR gets one alert (``webhook_endpoint_disabled``) instead
  of the delivery's. HR re-enables it with :func:`update_endpoint` (``enabled``), which resolves the alert.
  Every change of an endpoint is in its audit trail (:func:`endpoint_history`).
  A claim (``lease_until``) makes sure two workers never send one attempt twice; the sweep
  (:func:`sweep`) re-queues attempts whose job was lost.
* **SSRF guard** (:func:`check_url`): only http/https, no credentials in the URL, no redirects; in
  production the host must resolve to public addresses only, unless QIANLI_WEBHOOK_ALLOW_PRIVATE.
  Development and test allow loopback (the demo's and the tests' receivers). Checked when an
  endpoint is saved and again before every attempt.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, cast
from urllib.parse import urlsplit

import requests
from sqlalchemy import func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from standardwebhooks.webhooks import Webhook

from cases.errors import Conflict, InvalidInput, NotFound
from cases.evidence_kinds import EvidenceKind
from qianli.db import new_id, on_commit, run_in_transaction, utcnow
from qianli.models import (HrAlert, OutboxEvent, ResignationCase, WebhookAttempt, WebhookDelivery, WebhookEndpoint,
                           WebhookEndpointEvent)
from qianli.runtime import Runtime
from qianli.services import events
from qianli.services.alerts import raise_alert
from qianli.services.evidence import append_evidence
from qianli.settings import Settings

__all__ = ["EVENT_TYPES", "SUBSCRIBABLE_EVENTS", "QUEUE", "DELIVER_FUNC", "CreatedEndpoint", "check_url",
           "create_endpoint", "list_endpoints", "get_endpoint", "update_endpoint", "delete_endpoint", "rotate_secret",
           "endpoint_secrets", "fan_out", "send_test_event", "attempt_delivery", "replay_delivery", "list_deliveries",
           "get_delivery", "sweep", "enqueue_attempt", "sign_headers", "WebhookSweepResult", "dispatch_event", "PER_ENDPOINT",
           "endpoint_history"]

log = logging.getLogger(__name__)

QUEUE = "webhooks"
DELIVER_FUNC = "jobs.webhooks.deliver_webhook"

EVENT_TYPES: dict[str, str] = {**events.EVENT_TYPES, "webhook.test": "推送测试消息（不可订阅）"}
"""Every type a delivery may carry: the outbox's event types, plus the console's test message."""
SUBSCRIBABLE_EVENTS = tuple(events.EVENT_TYPES)

MAX_ENDPOINTS_PER_COMPANY = 50
_EXCERPT = 500


# ---- URLs and the SSRF guard -------------------------------------------------------------------

def _address_allowed(addr: str, settings: Settings) -> bool:
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if settings.webhook_allow_private:
        return not ip.is_multicast and not ip.is_unspecified
    if settings.allows_dev_backends and ip.is_loopback:
        return True
    return ip.is_global and not ip.is_multicast


def check_url(settings: Settings, url: str, *, resolve: bool = True) -> str:
    """The URL, normalised, or 422 ``webhook_url_invalid`` / ``webhook_url_forbidden``."""
    url = (url or "").strip()
    if not url or len(url) > 2000:
        raise InvalidInput("webhook_url_invalid", "地址不能为空且不超过 2000 个字符")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise InvalidInput("webhook_url_invalid", "地址格式不正确") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput("webhook_url_invalid", "只支持 http:// 或 https:// 地址", details={"scheme": parts.scheme})
    if parts.username or parts.password:
        raise InvalidInput("webhook_url_invalid", "地址中不能包含用户名或密码")
    if parts.fragment:
        raise InvalidInput("webhook_url_invalid", "地址中不能包含 # 片段")
    if settings.is_production and parts.scheme != "https" and not settings.webhook_allow_private:
        raise InvalidInput("webhook_url_forbidden", "生产环境只允许 https:// 地址")
    if not resolve:
        return url
    host = parts.hostname
    try:
        infos = socket.getaddrinfo(host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
        addrs = sorted({str(i[4][0]) for i in infos})
    except (socket.gaierror, UnicodeError):
        addrs = []
    if not addrs:
        if settings.is_production:
            raise InvalidInput("webhook_url_unresolvable", "无法解析该地址的主机名", details={"host": host})
        return url  # development/test: a host unknown here may exist where it is deployed; checked at send time
    refused = [a for a in addrs if not _address_allowed(a, settings)]
    if refused:
        raise InvalidInput("webhook_url_forbidden", "不允许向内网、本机或保留地址推送事件",
                           details={"host": host, "addresses": refused})
    return url


# ---- secrets -------------------------------------------------------------------------------------

def _new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def _aad(endpoint_id: str) -> str:
    return f"webhook-secret:{endpoint_id}"


def endpoint_secrets(rt: Runtime, endpoint: WebhookEndpoint, *, now: datetime | None = None) -> list[str]:
    """The secrets deliveries are signed with now: the current one, plus the previous one during its grace."""
    now = now or utcnow()
    out = [rt.cipher.decrypt(endpoint.secret_enc, _aad(endpoint.id))]
    if endpoint.previous_secret_enc and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        out.append(rt.cipher.decrypt(endpoint.previous_secret_enc, _aad(endpoint.id)))
    return out


def sign_headers(secrets_: list[str], msg_id: str, body: str, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt (one ``v1,`` signature per secret)."""
    signatures = " ".join(Webhook(s).sign(msg_id, at, body) for s in secrets_)
    return {"webhook-id": msg_id, "webhook-timestamp": str(int(at.timestamp())), "webhook-signature": signatures,
            "content-type": "application/json", "user-agent": "QianLi-Webhooks/1"}


# ---- endpoints ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # shown once


def _clean_events(event_types: Iterable[str] | None) -> list[str]:
    types = list(dict.fromkeys(event_types or []))
    if not types:
        raise InvalidInput("webhook_events_required", "请至少订阅一种事件", details={"allowed": list(SUBSCRIBABLE_EVENTS)})
    unknown = [t for t in types if t not in SUBSCRIBABLE_EVENTS]
    if unknown:
        raise InvalidInput("webhook_event_unknown", "不支持的事件类型",
                           details={"unknown": unknown, "allowed": list(SUBSCRIBABLE_EVENTS)})
    return types


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100:
        raise InvalidInput("webhook_name_invalid", "请填写系统名称（不超过 100 个字）")
    return name


def _audit(session: Session, ep: WebhookEndpoint, action: str, actor: str, detail: dict[str, Any] | None = None) -> None:
    session.add(WebhookEndpointEvent(company_id=ep.company_id, endpoint_id=ep.id, action=action, actor=actor[:120],
                                     detail=detail or {}, occurred_at=utcnow()))


def endpoint_history(session: Session, endpoint: WebhookEndpoint, *, limit: int = 100) -> list[WebhookEndpointEvent]:
    """The endpoint's audit trail, newest first."""
    return list(session.scalars(select(WebhookEndpointEvent).where(WebhookEndpointEvent.endpoint_id == endpoint.id)
                                .order_by(WebhookEndpointEvent.id.desc()).limit(limit)))


def create_endpoint(session: Session, rt: Runtime, *, company_id: str, name: str, url: str,
                    event_types: Iterable[str], description: str = "", enabled: bool = True,
                    actor: str) -> CreatedEndpoint:
    url = check_url(rt.settings, url)
    name, types = _clean_name(name), _clean_events(event_types)
    if len(description) > 500:
        raise InvalidInput("webhook_description_too_long", "说明不能超过 500 个字")
    count = session.scalar(select(func.count()).select_from(WebhookEndpoint).where(
        WebhookEndpoint.company_id == company_id, WebhookEndpoint.deleted_at.is_(None)))
    if count >= MAX_ENDPOINTS_PER_COMPANY:
        raise Conflict("webhook_endpoint_limit", f"每个公司最多 {MAX_ENDPOINTS_PER_COMPANY} 个推送地址")
    if session.scalar(_live(session, company_id).where(WebhookEndpoint.name == name).limit(1)) is not None:
        raise Conflict("webhook_name_taken", "已有同名系统的推送地址", details={"name": name})
    endpoint_id = new_id()
    secret = _new_secret()
    ep = WebhookEndpoint(id=endpoint_id, company_id=company_id, name=name, url=url, description=description,
                         event_types=types, enabled=bool(enabled), secret_enc=rt.cipher.encrypt(secret, _aad(endpoint_id)),
                         created_by=actor)
    if not ep.enabled:
        ep.disabled_at, ep.disabled_reason, ep.disabled_by = utcnow(), "manual", actor
    session.add(ep)
    session.flush()
    _audit(session, ep, "created", actor, {"name": name, "url": url, "event_types": types, "enabled": ep.enabled})
    log.info("webhook endpoint %s created by %s for %s", ep.id, actor, types)
    return CreatedEndpoint(ep, secret)


def _live(session: Session, company_id: str):
    return select(WebhookEndpoint).where(WebhookEndpoint.company_id == company_id, WebhookEndpoint.deleted_at.is_(None))


def list_endpoints(session: Session, company_id: str) -> list[WebhookEndpoint]:
    return list(session.scalars(_live(session, company_id).order_by(WebhookEndpoint.created_at)))


def get_endpoint(session: Session, company_id: str, endpoint_id: str, *, for_update: bool = False) -> WebhookEndpoint:
    q = _live(session, company_id).where(WebhookEndpoint.id == endpoint_id)
    ep = session.scalar(q.with_for_update() if for_update else q)
    if ep is None:
        raise NotFound("webhook_endpoint_not_found", "找不到该推送地址")
    return ep


def update_endpoint(session: Session, rt: Runtime, company_id: str, endpoint_id: str, *, actor: str,
                    **changes: Any) -> WebhookEndpoint:
    ep = get_endpoint(session, company_id, endpoint_id, for_update=True)
    before = {"name": ep.name, "url": ep.url, "event_types": list(ep.event_types or []), "description": ep.description}
    if "url" in changes and changes["url"] is not None:
        ep.url = check_url(rt.settings, changes["url"])
    if changes.get("name") is not None:
        name = _clean_name(changes["name"])
        clash = session.scalar(_live(session, company_id).where(WebhookEndpoint.name == name,
                                                                WebhookEndpoint.id != ep.id).limit(1))
        if clash is not None:
            raise Conflict("webhook_name_taken", "已有同名系统的推送地址", details={"name": name})
        ep.name = name
    if changes.get("event_types") is not None:
        ep.event_types = _clean_events(changes["event_types"])
    if changes.get("description") is not None:
        if len(changes["description"]) > 500:
            raise InvalidInput("webhook_description_too_long", "说明不能超过 500 个字")
        ep.description = changes["description"]
    after = {"name": ep.name, "url": ep.url, "event_types": list(ep.event_types or []), "description": ep.description}
    changed = {k: {"from": before[k], "to": after[k]} for k in before if before[k] != after[k]}
    if changed:
        _audit(session, ep, "updated", actor, {"changes": changed})
    if changes.get("enabled") is not None and bool(changes["enabled"]) != ep.enabled:
        if changes["enabled"]:
            _enable(session, ep, actor)
        else:
            ep.enabled = False
            ep.disabled_at, ep.disabled_reason, ep.disabled_by = utcnow(), "manual", actor
            _audit(session, ep, "disabled", actor, {"reason": "manual"})
    ep.updated_at = utcnow()
    session.flush()
    log.info("webhook endpoint %s updated by %s", ep.id, actor)
    return ep


def _enable(session: Session, ep: WebhookEndpoint, actor: str) -> None:
    """HR re-enables an endpoint: deliveries resume with the next event, the failure streak starts afresh, and
    the alert about its automatic disabling (if any) is resolved."""
    detail = {"was_disabled_reason": ep.disabled_reason, "was_disabled_at": _iso(ep.disabled_at),
              "was_disabled_by": ep.disabled_by, "was_failing_since": _iso(ep.failing_since)}
    ep.enabled = True
    ep.disabled_at = ep.disabled_reason = ep.disabled_by = None
    ep.failing_since = None
    resolved = []
    for alert in session.scalars(select(HrAlert).where(HrAlert.company_id == ep.company_id,
                                                       HrAlert.kind == "webhook_endpoint_disabled",
                                                       HrAlert.resolved_at.is_(None))):
        if (alert.payload or {}).get("endpoint_id") == ep.id:
            alert.resolved_at, alert.resolved_by = utcnow(), actor
            resolved.append(alert.id)
    _audit(session, ep, "enabled", actor, {**detail, "alerts_resolved": resolved})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def delete_endpoint(session: Session, company_id: str, endpoint_id: str, *, actor: str) -> None:
    """Soft delete: the delivery log stays; pending deliveries are not attempted any more."""
    ep = get_endpoint(session, company_id, endpoint_id, for_update=True)
    ep.deleted_at, ep.enabled = utcnow(), False
    _audit(session, ep, "deleted", actor)
    session.flush()
    log.info("webhook endpoint %s deleted by %s", ep.id, actor)


def rotate_secret(session: Session, rt: Runtime, company_id: str, endpoint_id: str, *, actor: str) -> CreatedEndpoint:
    """A new secret (returned once); the previous one still signs for QIANLI_WEBHOOK_SECRET_GRACE_S."""
    ep = get_endpoint(session, company_id, endpoint_id, for_update=True)
    now = utcnow()
    secret = _new_secret()
    ep.previous_secret_enc = ep.secret_enc
    ep.previous_secret_until = now + timedelta(seconds=rt.settings.webhook_secret_grace_s)
    ep.secret_enc = rt.cipher.encrypt(secret, _aad(ep.id))
    ep.secret_rotated_at = ep.updated_at = now
    _audit(session, ep, "secret_rotated", actor, {"previous_secret_until": _iso(ep.previous_secret_until)})
    session.flush()
    log.info("webhook endpoint %s secret rotated by %s", ep.id, actor)
    return CreatedEndpoint(ep, secret)


# ---- fan-out ------------------------------------------------------------------------------------

def _body(event_type: str, data: dict[str, Any], occurred_at: datetime) -> str:
    ts = occurred_at.isoformat().replace("+00:00", "Z")
    return json.dumps({"type": event_type, "timestamp": ts, "data": data}, ensure_ascii=False, separators=(",", ":"),
                      sort_keys=True)


def fan_out(session: Session, rt: Runtime | None, *, event_id: str, company_id: str, event_type: str,
            data: dict[str, Any], occurred_at: datetime | None = None, case_id: str | None = None,
            per_endpoint: Callable[[WebhookEndpoint], dict[str, Any]] | None = None) -> list[WebhookDelivery]:
    """One delivery per enabled endpoint of the company subscribed to ``event_type``, in this
    transaction; their first attempts are enqueued once it commits. ``per_endpoint`` adds fields to
    one endpoint's ``data`` (the revocation's confirmation callback)."""
    occurred_at = occurred_at or utcnow()
    endpoints = [ep for ep in session.scalars(_live(session, company_id).where(WebhookEndpoint.enabled.is_(True))
                                              .order_by(WebhookEndpoint.created_at))
                 if event_type in (ep.event_types or [])]
    out: list[WebhookDelivery] = []
    for ep in endpoints:
        payload = {**data, **(per_endpoint(ep) if per_endpoint else {})}
        d = WebhookDelivery(id=new_id(), company_id=company_id, endpoint_id=ep.id, event_id=event_id,
                            msg_id="msg_" + new_id(), event_type=event_type, case_id=case_id,
                            body=_body(event_type, payload, occurred_at), status="pending", attempts=0,
                            next_attempt_at=utcnow())
        session.add(d)
        out.append(d)
    if out:
        session.flush()
        ids = [d.id for d in out]
        on_commit(session, lambda: _enqueue_now(rt, ids))
    return out


PER_ENDPOINT: dict[str, Callable[[Session, OutboxEvent, WebhookEndpoint], dict[str, Any]]] = {}
"""Event type -> ``fn(session, event, endpoint)``: fields added to one endpoint's copy of the event's data
(the access revocation's confirmation callback, see qianli.services.revocation)."""


def dispatch_event(session: Session, event: OutboxEvent, rt: Runtime | None = None) -> list[WebhookDelivery]:
    """Fan one outbox event out to the company's subscribed endpoints and mark it dispatched."""
    if event.dispatched_at is not None:
        return []
    augment = PER_ENDPOINT.get(event.event_type)
    out = fan_out(session, rt, event_id=event.id, company_id=event.company_id, event_type=event.event_type,
                  data={"event_id": event.id, **(event.data or {})}, occurred_at=event.created_at or utcnow(),
                  case_id=event.case_id,
                  per_endpoint=(lambda ep: augment(session, event, ep)) if augment else None)
    event.dispatched_at = utcnow()
    session.flush()
    return out


def _publish_hook(session: Session, event: OutboxEvent) -> None:
    dispatch_event(session, event)


if _publish_hook not in events.publish_hooks:
    events.publish_hooks.append(_publish_hook)


def send_test_event(session: Session, rt: Runtime, company_id: str, endpoint_id: str, *, actor: str) -> WebhookDelivery:
    """A ``webhook.test`` message to one endpoint (enabled or not), through the normal delivery path."""
    ep = get_endpoint(session, company_id, endpoint_id)
    now = utcnow()
    d = WebhookDelivery(id=new_id(), company_id=company_id, endpoint_id=ep.id, event_id=None, msg_id="msg_" + new_id(),
                        event_type="webhook.test",
                        body=_body("webhook.test", {"endpoint_id": ep.id, "requested_by": actor,
                                                    "message": "QianLi 推送测试"}, now),
                        status="pending", attempts=0, next_attempt_at=now)
    session.add(d)
    session.flush()
    on_commit(session, lambda: _enqueue_now(rt, [d.id]))
    return d


# ---- queueing -------------------------------------------------------------------------------------

def _job_id(delivery_id: str, attempt: int) -> str:
    return f"webhook-{delivery_id}-{attempt}"


def _enqueue_now(rt: Runtime | None, delivery_ids: list[str]) -> None:
    from qianli.runtime import get_runtime

    rt = rt or get_runtime()
    for did in delivery_ids:
        enqueue_attempt(rt, did, 1, None)


def enqueue_attempt(rt: Runtime, delivery_id: str, attempt: int, at: datetime | None) -> bool:
    """Enqueue the job of one attempt (at ``at``, or now); a Redis failure is logged and left to the sweep."""
    from rq import Queue

    try:
        q = Queue(QUEUE, connection=rt.redis)
        kwargs = {"job_id": _job_id(delivery_id, attempt), "result_ttl": 3600, "failure_ttl": 7 * 86400,
                  "job_timeout": int(rt.settings.webhook_lease_s)}
        if at is None:
            q.enqueue(DELIVER_FUNC, delivery_id, **kwargs)
        else:
            q.enqueue_at(at, DELIVER_FUNC, delivery_id, **kwargs)
        return True
    except Exception:  # noqa: BLE001 - Redis down: the row stays due and the sweep enqueues it
        log.exception("enqueueing webhook delivery %s failed; the sweep will retry", delivery_id)
        return False


# ---- one attempt --------------------------------------------------------------------------------

@dataclass(frozen=True)
class AttemptOutcome:
    delivery_id: str
    status: str  # succeeded / retrying / failed / skipped
    attempt: int = 0
    status_code: int | None = None
    error: str | None = None


def _claim(session: Session, delivery_id: str, now: datetime, lease_s: int, *, manual: bool) -> bool:
    cond = [WebhookDelivery.id == delivery_id,
            (WebhookDelivery.lease_until.is_(None)) | (WebhookDelivery.lease_until < now)]
    if not manual:
        cond += [WebhookDelivery.status == "pending",
                 (WebhookDelivery.next_attempt_at.is_(None)) | (WebhookDelivery.next_attempt_at <= now)]
    res = cast(CursorResult, session.execute(
        update(WebhookDelivery).where(*cond).values(lease_until=now + timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)))
    return res.rowcount == 1


def _post(rt: Runtime, url: str, headers: dict[str, str], body: str) -> tuple[int | None, str | None, str | None]:
    """(status code, error, response excerpt)."""
    try:
        check_url(rt.settings, url)
    except InvalidInput as exc:
        return None, f"{exc.code}: {exc.details or ''}", None
    try:
        resp = requests.post(url, data=body.encode(), headers=headers, timeout=rt.settings.webhook_timeout_s,
                             allow_redirects=False, stream=True)
        try:
            raw = resp.raw.read(_EXCERPT * 4, decode_content=True) or b""
        finally:
            resp.close()
        excerpt = raw.decode("utf-8", "replace")[:_EXCERPT]
    except requests.Timeout:
        return None, f"timeout after {rt.settings.webhook_timeout_s:g}s", None
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {str(exc)[:300]}", None
    if 200 <= resp.status_code < 300:
        return resp.status_code, None, excerpt
    if 300 <= resp.status_code < 400:
        return resp.status_code, "redirects are not followed", excerpt
    return resp.status_code, f"HTTP {resp.status_code}", excerpt


def attempt_delivery(rt: Runtime, delivery_id: str, *, manual: bool = False, actor: str = "system") -> AttemptOutcome:
    """Make one attempt of a delivery (the job's body; :func:`replay_delivery` for a manual one)."""
    now = utcnow()
    claimed = run_in_transaction(rt.session_factory,
                                 lambda s: _claim(s, delivery_id, now, rt.settings.webhook_lease_s, manual=manual))
    if not claimed:
        return AttemptOutcome(delivery_id, "skipped")

    def load(s: Session) -> tuple[str, str, str, list[str], str | None]:
        d = s.get(WebhookDelivery, delivery_id)
        ep = s.get(WebhookEndpoint, d.endpoint_id)
        usable = ep is not None and ep.deleted_at is None and (ep.enabled or d.event_type == "webhook.test" or manual)
        return (d.msg_id, d.body, ep.url if ep else "", endpoint_secrets(rt, ep) if usable else [],
                None if usable else "endpoint_disabled")

    msg_id, body, url, keys, refusal = run_in_transaction(rt.session_factory, load)
    started = utcnow()
    t0 = time.monotonic()
    if refusal:
        code, error, excerpt = None, refusal, None
    else:
        code, error, excerpt = _post(rt, url, sign_headers(keys, msg_id, body, started), body)
    latency = int((time.monotonic() - t0) * 1000)

    def record(s: Session) -> AttemptOutcome:
        d = s.get(WebhookDelivery, delivery_id, with_for_update=True)
        ep = s.get(WebhookEndpoint, d.endpoint_id)
        attempt_no = d.attempts + 1
        d.attempts = attempt_no
        d.lease_until = None
        d.last_status_code, d.last_error = code, error
        a = WebhookAttempt(company_id=d.company_id, delivery_id=d.id, attempt=attempt_no,
                           trigger="replay" if manual else "auto", actor=actor, started_at=started, latency_ms=latency,
                           status_code=code, ok=error is None, error=error, response_excerpt=excerpt)
        s.add(a)
        case = s.get(ResignationCase, d.case_id) if d.case_id else None
        if error is None and ep is not None:
            ep.failing_since = None  # the endpoint answers again
        elif refusal is None and ep is not None and ep.failing_since is None:
            ep.failing_since = started  # the first failure of a run
        if error is None:
            d.status, d.finished_at, d.next_attempt_at = "succeeded", utcnow(), None
            if case is not None:
                append_evidence(s, case, "system", EvidenceKind.WEBHOOK_DELIVERED, {
                    "delivery_id": d.id, "webhook_id": d.msg_id, "event_type": d.event_type, "endpoint": ep.name,
                    "attempt": attempt_no, "status_code": code, "trigger": a.trigger})
            s.flush()
            return AttemptOutcome(d.id, "succeeded", attempt_no, code)
        if manual and d.status != "pending":
            s.flush()  # a replay of a finished delivery leaves it as it was
            return AttemptOutcome(d.id, d.status, attempt_no, code, error)
        if manual:
            s.flush()  # a replay while retrying: the scheduled retry stays
            return AttemptOutcome(d.id, "retrying", attempt_no, code, error)
        delays = rt.settings.webhook_retry_delays()
        s.flush()
        auto_failures = s.scalar(select(func.count()).select_from(WebhookAttempt).where(
            WebhookAttempt.delivery_id == d.id, WebhookAttempt.trigger == "auto", WebhookAttempt.ok.is_(False))) or 0
        if refusal is None and auto_failures <= len(delays):
            d.next_attempt_at = a.next_retry_at = utcnow() + timedelta(seconds=delays[auto_failures - 1])
            s.flush()
            nxt, when = attempt_no + 1, d.next_attempt_at
            on_commit(s, lambda: enqueue_attempt(rt, delivery_id, nxt, when))
            return AttemptOutcome(d.id, "retrying", attempt_no, code, error)
        d.status, d.finished_at, d.next_attempt_at = "failed", utcnow(), None
        s.flush()
        already_told = refusal is not None and ep.disabled_reason == "failing"  # HR got the endpoint's alert
        if not _disable_if_failing(s, rt, ep, d, code, error) and not already_told:  # that alert names this one
            raise_alert(s, company_id=d.company_id, kind="webhook_failed", case_id=d.case_id,
                        message=f"事件 {d.event_type} 推送到「{ep.name}」失败（已尝试 {attempt_no} 次）：{error}",
                        payload={"delivery_id": d.id, "endpoint_id": ep.id, "event_type": d.event_type})
        if case is not None:
            append_evidence(s, case, "system", EvidenceKind.WEBHOOK_DELIVERY_FAILED, {
                "delivery_id": d.id, "webhook_id": d.msg_id, "event_type": d.event_type, "endpoint": ep.name,
                "attempts": attempt_no, "last_status_code": code, "last_error": error})
        return AttemptOutcome(d.id, "failed", attempt_no, code, error)

    return run_in_transaction(rt.session_factory, record)


def _disable_if_failing(session: Session, rt: Runtime, ep: WebhookEndpoint, d: WebhookDelivery, code: int | None,
                        error: str | None) -> bool:
    """A delivery to ``ep`` just failed for good: disable the endpoint when every attempt to it has failed for
    QIANLI_WEBHOOK_DISABLE_AFTER_S or longer (audit entry, one HR alert). True when it did."""
    after = rt.settings.webhook_disable_after_s
    if after <= 0 or not ep.enabled or ep.failing_since is None:
        return False
    # Two workers may finish failing deliveries of one endpoint at once: decide on the locked, current row.
    ep = session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == ep.id).with_for_update()
                        .execution_options(populate_existing=True))
    if ep is None or not ep.enabled or ep.deleted_at is not None or ep.failing_since is None:
        return False
    now = utcnow()
    since = ep.failing_since
    if now - since < timedelta(seconds=after):
        return False
    failed = session.scalar(select(func.count()).select_from(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == ep.id, WebhookDelivery.status == "failed",
        WebhookDelivery.finished_at >= since)) or 0
    attempts = session.scalar(select(func.count()).select_from(WebhookAttempt).join(
        WebhookDelivery, WebhookDelivery.id == WebhookAttempt.delivery_id).where(
        WebhookDelivery.endpoint_id == ep.id, WebhookAttempt.started_at >= since)) or 0
    ep.enabled = False
    ep.disabled_at, ep.disabled_reason, ep.disabled_by = now, "failing", "system"
    detail = {"reason": "failing", "failing_since": since.isoformat(), "disable_after_s": after,
              "failed_deliveries": int(failed), "failed_attempts": int(attempts), "last_delivery_id": d.id,
              "last_event_type": d.event_type, "last_status_code": code, "last_error": error}
    _audit(session, ep, "auto_disabled", "system", detail)
    session.flush()
    days = (now - since).total_seconds() / 86400
    raise_alert(session, company_id=ep.company_id, kind="webhook_endpoint_disabled", case_id=d.case_id,
                message=(f"推送地址「{ep.name}」已连续 {days:.1f} 天推送失败（{failed} 条事件失败，最近一次：{error}），"
                         "系统已自动停用。请修复接收端后在“事件推送”页面重新启用，并重新推送失败的事件。"),
                payload={"endpoint_id": ep.id, "delivery_id": d.id, "event_type": d.event_type,
                         "failing_since": since.isoformat(), "failed_deliveries": int(failed)})
    log.warning("webhook endpoint %s disabled: every attempt failed since %s (%s deliveries failed)", ep.id,
                since.isoformat(), failed)
    return True


def replay_delivery(session: Session, rt: Runtime, company_id: str, delivery_id: str, *,
                    actor: str) -> tuple[WebhookDelivery, WebhookEndpoint]:
    """HR re-sends a delivery now (same webhook-id and body: receivers that saw it already drop it)."""
    d = get_delivery(session, company_id, delivery_id)
    ep = session.get(WebhookEndpoint, d.endpoint_id)
    if ep is None or ep.deleted_at is not None:
        raise Conflict("webhook_endpoint_deleted", "该推送地址已删除，无法重新推送")
    if d.lease_until is not None and d.lease_until > utcnow():
        raise Conflict("webhook_delivery_in_flight", "该事件正在推送中，请稍后再试")
    did = d.id
    on_commit(session, lambda: _replay_job(rt, did, actor))
    return d, ep


def _replay_job(rt: Runtime, delivery_id: str, actor: str) -> None:
    from rq import Queue

    try:
        Queue(QUEUE, connection=rt.redis).enqueue("jobs.webhooks.replay_webhook", delivery_id, actor,
                                                   job_id=f"webhook-replay-{delivery_id}-{new_id()[:8]}",
                                                   result_ttl=3600, failure_ttl=7 * 86400,
                                                   job_timeout=int(rt.settings.webhook_lease_s))
    except Exception:  # noqa: BLE001
        log.exception("enqueueing the replay of webhook delivery %s failed", delivery_id)


# ---- reading --------------------------------------------------------------------------------------

def get_delivery(session: Session, company_id: str, delivery_id: str) -> WebhookDelivery:
    d = session.scalar(select(WebhookDelivery).where(WebhookDelivery.id == delivery_id,
                                                     WebhookDelivery.company_id == company_id))
    if d is None:
        raise NotFound("webhook_delivery_not_found", "找不到该推送记录")
    return d


def list_deliveries(session: Session, company_id: str, *, endpoint_id: str | None = None, status: str | None = None,
                    event_type: str | None = None, case_id: str | None = None, page: int = 1,
                    page_size: int = 50) -> tuple[list[tuple[WebhookDelivery, WebhookEndpoint, list[WebhookAttempt]]], int]:
    q = select(WebhookDelivery).where(WebhookDelivery.company_id == company_id)
    if endpoint_id:
        q = q.where(WebhookDelivery.endpoint_id == endpoint_id)
    if status:
        q = q.where(WebhookDelivery.status == status)
    if event_type:
        q = q.where(WebhookDelivery.event_type == event_type)
    if case_id:
        q = q.where(WebhookDelivery.case_id == case_id)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = list(session.scalars(q.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
                                .offset((page - 1) * page_size).limit(page_size)))
    eps = {e.id: e for e in session.scalars(select(WebhookEndpoint).where(
        WebhookEndpoint.id.in_({d.endpoint_id for d in rows})))} if rows else {}
    attempts: dict[str, list[WebhookAttempt]] = {}
    if rows:
        for a in session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_([d.id for d in rows]))
                                 .order_by(WebhookAttempt.attempt)):
            attempts.setdefault(a.delivery_id, []).append(a)
    return [(d, eps[d.endpoint_id], attempts.get(d.id, [])) for d in rows], total


# ---- sweep --------------------------------------------------------------------------------------------

@dataclass
class WebhookSweepResult:
    requeued: int = 0
    dispatched: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"requeued": self.requeued, "dispatched": self.dispatched}


def sweep(rt: Runtime, *, limit: int = 1000) -> WebhookSweepResult:
    """Dispatch outbox events no hook dispatched (published by a process that never loaded this module),
    and re-queue due attempts whose job is not in Redis any more (lost jobs, Redis restarts, crashed
    workers: a stale lease). Safe to run anywhere: an attempt is claimed before it is sent."""
    res = WebhookSweepResult()
    now = utcnow()
    slack = timedelta(seconds=30)  # give a freshly scheduled job time to be picked up first

    def due(s: Session) -> list[tuple[str, int]]:
        return [(d.id, d.attempts + 1) for d in s.scalars(
            select(WebhookDelivery).where(WebhookDelivery.status == "pending",
                                          WebhookDelivery.next_attempt_at <= now - slack,
                                          (WebhookDelivery.lease_until.is_(None)) | (WebhookDelivery.lease_until < now))
            .order_by(WebhookDelivery.next_attempt_at).limit(limit))]

    def undispatched(s: Session) -> int:
        rows = list(s.scalars(select(OutboxEvent).where(OutboxEvent.dispatched_at.is_(None))
                              .order_by(OutboxEvent.created_at).limit(limit).with_for_update(skip_locked=True)))
        for ev in rows:
            dispatch_event(s, ev, rt)
        return len(rows)

    res.dispatched = run_in_transaction(rt.session_factory, undispatched)

    from rq.job import Job

    for did, attempt in run_in_transaction(rt.session_factory, due):
        try:
            job = Job.fetch(_job_id(did, attempt), connection=rt.redis)
            status = job.get_status(refresh=False)
            alive = status is not None and str(getattr(status, "value", status)) in ("queued", "scheduled", "started",
                                                                                   "deferred")
        except Exception:  # noqa: BLE001 - no such job
            alive = False
        if not alive and enqueue_attempt(rt, did, attempt, None):
            res.requeued += 1
    return res
