"""Outreach to the alumni: campaigns (greetings, company news, job openings) sent by RQ jobs, job
openings matched to profiles, and the alumni's answers.

A campaign selects, when it is created, the alumni with a consent in force for its purpose (a job
opening: those whose skills or tags match it, unless marked not eligible for re-hire), one
``campaign_deliveries`` row each with its own unsubscribe token. The job (``jobs.alumni``)
then sends what is due, checking again for every message, at the moment of sending:

- the consent to the purpose is still in force (nothing is sent after a withdrawal);
- the per-person frequency cap (the campaign's, default QIANLI_ALUMNI_FREQUENCY_CAP messages in
  QIANLI_ALUMNI_FREQUENCY_WINDOW_DAYS) is not reached;
- not inside the quiet hours (QIANLI_ALUMNI_QUIET_HOURS, Beijing time): the job is scheduled
  again for their end;
- the company's rate limit (QIANLI_ALUMNI_SEND_RATE_PER_MINUTE, a Redis counter per minute):
  what is over it waits for the next minute.

Every message carries its unsubscribe path ("回复TD退订" and the link). The delivery rows are the
delivery log (``listCampaignDeliveries``).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cases.alumni import (FESTIVAL_GREETINGS, FESTIVAL_LABELS, PURPOSE_LABELS, AlumniPurpose, Festival, festival_on,
                          match_score, normalize_terms)
from cases.clock import aware, beijing_today
from cases.errors import Conflict, InvalidInput, NotFound
from cases.reminders import QuietHours
from identity.sms import SmsGatewayError
from qianli.db import on_commit, utcnow
from qianli.models import (AlumniCampaign, AlumniConsent, Alumnus, CampaignDelivery, Company, Employee, JobOpening,
                           JobOpeningAnswer)
from qianli.runtime import Runtime
from qianli.services.alumni import active_purposes, alumnus_for_employee
from qianli.services.employees import employee_phone

__all__ = ["QUEUE", "RUN_FUNC", "create_campaign", "run_campaign", "RunResult", "list_deliveries", "message_text",
           "unsubscribe_url", "create_job_opening", "list_job_openings", "get_job_opening", "opening_matches",
           "answer_job_opening", "opening_answers", "festival_campaigns", "enqueue_campaign", "list_campaigns",
           "openings_for_alumnus"]

log = logging.getLogger(__name__)

QUEUE = "alumni"
RUN_FUNC = "jobs.alumni.run_campaign_job"
MAX_ATTEMPTS = 3


def unsubscribe_url(rt: Runtime, token: str) -> str:
    return f"{rt.settings.public_base_url.rstrip('/')}/alumni/unsubscribe/{token}"


def message_text(company_name: str, campaign: AlumniCampaign) -> str:
    """The SMS text (without the link): the company, the message and the unsubscribe reply."""
    return f"【{company_name}】{campaign.title}：{campaign.body}（{PURPOSE_LABELS[AlumniPurpose(campaign.purpose)]}，回复TD退订）"


def enqueue_campaign(rt: Runtime, campaign_id: str, at: datetime | None = None) -> None:
    """Queue (or schedule) a run of the campaign; a Redis failure is logged (``qianli alumni run`` repairs)."""
    from rq import Queue

    q = Queue(QUEUE, connection=rt.redis)
    try:
        if at is None:
            q.enqueue(RUN_FUNC, campaign_id, result_ttl=3600, failure_ttl=7 * 86400)
        else:
            q.enqueue_at(aware(at), RUN_FUNC, campaign_id, result_ttl=3600, failure_ttl=7 * 86400)
    except Exception:  # noqa: BLE001 - the rows are the truth; a later run sends them
        log.exception("enqueueing alumni campaign %s failed", campaign_id)


def _recipients(session: Session, company_id: str, purpose: str, opening: JobOpening | None) -> list[str]:
    ids = list(session.scalars(select(AlumniConsent.employee_id).join(
        Alumnus, (Alumnus.employee_id == AlumniConsent.employee_id) & (Alumnus.company_id == AlumniConsent.company_id))
        .where(AlumniConsent.company_id == company_id, AlumniConsent.purpose == purpose,
               AlumniConsent.withdrawn_at.is_(None), Alumnus.rehired_at.is_(None)).distinct()))
    if opening is None:
        return sorted(ids)
    out = []
    for emp_id in sorted(ids):
        a = alumnus_for_employee(session, company_id, emp_id)
        if a is None or a.rehire_eligible is False:
            continue
        if match_score(opening.skills, opening.tags, a.skills or [], a.tags or []).score > 0:
            out.append(emp_id)
    return out


def create_campaign(session: Session, rt: Runtime, *, company_id: str, actor: str, purpose: str, title: str, body: str,
                    job_opening_id: str | None = None, frequency_cap: int | None = None,
                    frequency_window_days: int | None = None, festival: str | None = None) -> AlumniCampaign:
    try:
        AlumniPurpose(purpose)
    except ValueError:
        raise InvalidInput("alumni_purpose_invalid", "purpose must be greetings, company_news or job_openings") from None
    opening = None
    if job_opening_id is not None:
        opening = get_job_opening(session, company_id, job_opening_id)
        if purpose != AlumniPurpose.JOB_OPENINGS.value:
            raise InvalidInput("campaign_purpose_mismatch", "a job opening is sent with purpose job_openings")
        if opening.status != "open":
            raise Conflict("job_opening_closed", "该岗位已关闭")
    elif purpose == AlumniPurpose.JOB_OPENINGS.value:
        raise InvalidInput("job_opening_required", "purpose job_openings needs job_opening_id")
    s = rt.settings
    cap = frequency_cap or s.alumni_frequency_cap
    window = frequency_window_days or s.alumni_frequency_window_days
    if not 1 <= cap <= 100 or not 1 <= window <= 365:
        raise InvalidInput("frequency_cap_invalid", "frequency_cap 1-100, frequency_window_days 1-365")
    campaign = AlumniCampaign(company_id=company_id, purpose=purpose, title=title.strip()[:200], body=body.strip(),
                              job_opening_id=job_opening_id, festival=festival, frequency_cap=cap,
                              frequency_window_days=window, created_by=actor)
    session.add(campaign)
    session.flush()
    now = utcnow()
    recipients = _recipients(session, company_id, purpose, opening)
    session.add_all([CampaignDelivery(company_id=company_id, campaign_id=campaign.id, employee_id=emp_id,
                                      purpose=purpose, unsubscribe_token=secrets.token_urlsafe(16), not_before=now)
                     for emp_id in recipients])
    campaign.recipients = len(recipients)
    if not recipients:
        campaign.state, campaign.finished_at = "done", now
    session.flush()
    if recipients:
        on_commit(session, lambda: enqueue_campaign(rt, campaign.id))
    return campaign


def list_campaigns(session: Session, company_id: str, limit: int = 100) -> list[AlumniCampaign]:
    return list(session.scalars(select(AlumniCampaign).where(AlumniCampaign.company_id == company_id)
                                .order_by(AlumniCampaign.created_at.desc()).limit(limit)))


@dataclass(frozen=True)
class RunResult:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    deferred_until: datetime | None = None
    done: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "skipped": self.skipped, "failed": self.failed, "done": self.done,
                "deferred_until": self.deferred_until.isoformat() if self.deferred_until else None}


def _rate_slot(rt: Runtime, company_id: str, now: datetime) -> bool:
    """Take one send from the company's budget of this minute; False when it is spent."""
    key = f"qianli:alumni:rate:{company_id}:{int(now.timestamp()) // 60}"
    n = rt.redis.incr(key)
    if n == 1:
        rt.redis.expire(key, 120)
    return int(n) <= rt.settings.alumni_send_rate_per_minute


def _sent_in_window(session: Session, company_id: str, employee_id: str, since: datetime) -> int:
    return int(session.scalar(select(func.count()).select_from(CampaignDelivery).where(
        CampaignDelivery.company_id == company_id, CampaignDelivery.employee_id == employee_id,
        CampaignDelivery.status == "sent", CampaignDelivery.sent_at >= since)) or 0)


def run_campaign(rt: Runtime, campaign_id: str, *, now: datetime | None = None, reschedule: bool = True) -> RunResult:
    """Send the campaign's due messages (see the module docstring); one transaction per message."""
    now = now or utcnow()
    quiet = QuietHours.parse(rt.settings.alumni_quiet_hours)
    with rt.session_factory() as session:
        campaign = session.get(AlumniCampaign, campaign_id)
        if campaign is None or campaign.state == "done":
            return RunResult(done=True)
        if quiet is not None and quiet.contains(now):
            until = quiet.next_allowed(now)
            if reschedule:
                enqueue_campaign(rt, campaign_id, at=until)
            return RunResult(deferred_until=until)
        campaign.state = "running"
        company = session.get(Company, campaign.company_id)
        company_name = company.name if company else ""
        due = list(session.scalars(select(CampaignDelivery.id).where(
            CampaignDelivery.campaign_id == campaign_id, CampaignDelivery.status == "pending",
            CampaignDelivery.not_before <= now).order_by(CampaignDelivery.created_at, CampaignDelivery.id)))
        session.commit()
    sent = skipped = failed = 0
    deferred: datetime | None = None
    for delivery_id in due:
        with rt.session_factory() as session:
            d = session.get(CampaignDelivery, delivery_id)
            campaign = session.get(AlumniCampaign, campaign_id)
            if d is None or d.status != "pending":
                continue
            outcome = _send_one(session, rt, campaign, d, company_name, now)
            if outcome == "rate_limited":
                session.rollback()
                deferred = now.replace(second=0, microsecond=0) + timedelta(minutes=1)
                break
            session.commit()
            if outcome == "sent":
                sent += 1
            elif outcome == "failed":
                failed += 1
            elif outcome.startswith("skipped"):
                skipped += 1
    with rt.session_factory() as session:
        campaign = session.get(AlumniCampaign, campaign_id)
        nxt = session.scalar(select(func.min(CampaignDelivery.not_before)).where(
            CampaignDelivery.campaign_id == campaign_id, CampaignDelivery.status == "pending"))
        done = nxt is None
        if done:
            campaign.state, campaign.finished_at = "done", utcnow()
        session.commit()
    if not done:
        deferred = deferred or max(aware(nxt), now + timedelta(seconds=1))
        if reschedule:
            enqueue_campaign(rt, campaign_id, at=deferred)
    return RunResult(sent, skipped, failed, deferred, done)


def _send_one(session: Session, rt: Runtime, campaign: AlumniCampaign, d: CampaignDelivery, company_name: str,
              now: datetime) -> str:
    emp = session.get(Employee, d.employee_id)
    if emp is None or d.purpose not in active_purposes(session, d.company_id, d.employee_id):
        d.status, d.detail = "skipped_no_consent", "no consent in force for this purpose at sending time"
        return d.status
    if _sent_in_window(session, d.company_id, d.employee_id, now - timedelta(days=campaign.frequency_window_days)) \
            >= campaign.frequency_cap:
        d.status = "skipped_frequency_cap"
        d.detail = f"cap {campaign.frequency_cap} per {campaign.frequency_window_days} days reached"
        return d.status
    phone = employee_phone(rt, emp)
    if not phone:
        d.status, d.detail = "skipped_no_phone", "no phone number on record"
        return d.status
    if not _rate_slot(rt, d.company_id, now):
        return "rate_limited"
    d.attempts += 1
    try:
        res = rt.sms_gateway.send(phone, "alumni", {"text": message_text(company_name, campaign),
                                                    "link": unsubscribe_url(rt, d.unsubscribe_token)})
    except SmsGatewayError as exc:
        d.detail = f"{exc.provider}:{exc.provider_code}"[:500]
        if exc.retryable and d.attempts < MAX_ATTEMPTS:
            d.not_before = now + timedelta(seconds=60 * d.attempts)
            return "retry"
        d.status = "failed"
        return d.status
    d.status, d.sent_at, d.provider_message_id, d.detail = "sent", now, res.message_id[:128], ""
    return d.status


def list_deliveries(session: Session, company_id: str, campaign_id: str, *, status: str | None = None,
                    page: int = 1, per_page: int = 50) -> tuple[AlumniCampaign, list[tuple[CampaignDelivery, Employee]], int]:
    campaign = session.scalar(select(AlumniCampaign).where(AlumniCampaign.id == campaign_id,
                                                           AlumniCampaign.company_id == company_id))
    if campaign is None:
        raise NotFound("campaign_not_found", "找不到该活动")
    q = select(CampaignDelivery, Employee).join(Employee, Employee.id == CampaignDelivery.employee_id).where(
        CampaignDelivery.campaign_id == campaign_id)
    if status:
        q = q.where(CampaignDelivery.status == status)
    total = int(session.scalar(select(func.count()).select_from(q.subquery())) or 0)
    rows = session.execute(q.order_by(CampaignDelivery.created_at, CampaignDelivery.id)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return campaign, [(r[0], r[1]) for r in rows], total


# -- festivals ---------------------------------------------------------------------------------
def festival_campaigns(session: Session, rt: Runtime, *, now: datetime | None = None) -> list[AlumniCampaign]:
    """On Spring Festival and Mid-Autumn (Beijing date, from the lunar calendar), one greetings
    campaign per company with alumni who consented to greetings (once per festival and year)."""
    if not rt.settings.alumni_festival_greetings:
        return []
    today = beijing_today(now)
    festival = festival_on(today)
    if festival is None:
        return []
    out = []
    companies = list(session.scalars(select(AlumniConsent.company_id).where(
        AlumniConsent.purpose == AlumniPurpose.GREETINGS.value, AlumniConsent.withdrawn_at.is_(None)).distinct()))
    tag = f"{festival.value}-{today.year}"
    for company_id in sorted(companies):
        exists = session.scalar(select(AlumniCampaign.id).where(AlumniCampaign.company_id == company_id,
                                                                AlumniCampaign.festival == tag))
        if exists:
            continue
        out.append(create_campaign(session, rt, company_id=company_id, actor="job:festival_greetings",
                                   purpose=AlumniPurpose.GREETINGS.value,
                                   title=f"{FESTIVAL_LABELS[Festival(festival)]}问候",
                                   body=FESTIVAL_GREETINGS[Festival(festival)], festival=tag))
    return out


# -- job openings -------------------------------------------------------------------------------
def create_job_opening(session: Session, rt: Runtime, *, company_id: str, actor: str, title: str, department: str,
                       description: str, skills: list[str], tags: list[str], notify: bool = True,
                       message: str | None = None) -> tuple[JobOpening, AlumniCampaign | None]:
    skills, tags = normalize_terms(skills), normalize_terms(tags)
    if not skills and not tags:
        raise InvalidInput("job_opening_terms_required", "请至少填写一项技能或标签，用于匹配人才库")
    opening = JobOpening(company_id=company_id, title=title.strip()[:200], department=department.strip()[:100],
                         description=description.strip(), skills=skills, tags=tags, created_by=actor)
    session.add(opening)
    session.flush()
    campaign = None
    if notify:
        body = message or f"{opening.department + ' ' if opening.department else ''}{opening.title} 岗位开放，" \
                          "欢迎您回来！如有意向，请在小程序中点击“感兴趣”"
        campaign = create_campaign(session, rt, company_id=company_id, actor=actor,
                                   purpose=AlumniPurpose.JOB_OPENINGS.value, title=f"岗位推荐：{opening.title}",
                                   body=body, job_opening_id=opening.id)
    return opening, campaign


def get_job_opening(session: Session, company_id: str, opening_id: str) -> JobOpening:
    o = session.scalar(select(JobOpening).where(JobOpening.id == opening_id, JobOpening.company_id == company_id))
    if o is None:
        raise NotFound("job_opening_not_found", "找不到该岗位")
    return o


def list_job_openings(session: Session, company_id: str, limit: int = 100) -> list[JobOpening]:
    return list(session.scalars(select(JobOpening).where(JobOpening.company_id == company_id)
                                .order_by(JobOpening.created_at.desc()).limit(limit)))


def opening_matches(session: Session, opening: JobOpening) -> list[tuple[Alumnus, Any]]:
    """Alumni whose profile matches the opening, best first (for HR; consent does not matter here)."""
    out = []
    for a in session.scalars(select(Alumnus).where(Alumnus.company_id == opening.company_id)):
        m = match_score(opening.skills, opening.tags, a.skills or [], a.tags or [])
        if m.score > 0:
            out.append((a, m))
    return sorted(out, key=lambda x: (-x[1].score, x[0].id))


def openings_for_alumnus(session: Session, company_id: str, employee_id: str) -> list[tuple[JobOpening, str | None]]:
    """The open positions the person was sent (job-opening messages), with their answer."""
    rows = session.execute(select(JobOpening, JobOpeningAnswer.answer).join(
        AlumniCampaign, AlumniCampaign.job_opening_id == JobOpening.id).join(
        CampaignDelivery, (CampaignDelivery.campaign_id == AlumniCampaign.id)
        & (CampaignDelivery.employee_id == employee_id)).outerjoin(
        JobOpeningAnswer, (JobOpeningAnswer.opening_id == JobOpening.id) & (JobOpeningAnswer.employee_id == employee_id))
        .where(JobOpening.company_id == company_id, JobOpening.status == "open", CampaignDelivery.status == "sent")
        .order_by(JobOpening.created_at.desc())).all()
    seen: set[str] = set()
    out = []
    for o, ans in rows:
        if o.id not in seen:
            seen.add(o.id)
            out.append((o, ans))
    return out


def answer_job_opening(session: Session, *, company_id: str, employee_id: str, opening_id: str, answer: str,
                       note: str = "") -> JobOpeningAnswer:
    """An alumnus answers an opening ("interested" / "not_interested"); answering again replaces it."""
    opening = get_job_opening(session, company_id, opening_id)
    if opening.status != "open":
        raise Conflict("job_opening_closed", "该岗位已关闭")
    if alumnus_for_employee(session, company_id, employee_id) is None:
        raise Conflict("alumni_not_member", "您尚未加入离职人才库")
    if answer not in ("interested", "not_interested"):
        raise InvalidInput("job_answer_invalid", "answer must be interested or not_interested")
    row = session.scalar(select(JobOpeningAnswer).where(JobOpeningAnswer.opening_id == opening.id,
                                                        JobOpeningAnswer.employee_id == employee_id))
    if row is None:
        row = JobOpeningAnswer(company_id=company_id, opening_id=opening.id, employee_id=employee_id, answer=answer)
        session.add(row)
    row.answer, row.note, row.answered_at = answer, (note or "")[:500], utcnow()
    session.flush()
    return row


def opening_answers(session: Session, opening: JobOpening) -> list[tuple[JobOpeningAnswer, Employee, Alumnus | None]]:
    rows = session.execute(select(JobOpeningAnswer, Employee).join(Employee, Employee.id == JobOpeningAnswer.employee_id)
                           .where(JobOpeningAnswer.opening_id == opening.id)
                           .order_by(JobOpeningAnswer.answered_at.desc())).all()
    return [(ans, emp, alumnus_for_employee(session, opening.company_id, emp.id)) for ans, emp in rows]
