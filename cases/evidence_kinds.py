"""The vocabulary of the evidence chain: every action an entry may record, its dossier view and its
zh-CN label.

An evidence entry's ``action`` is an :class:`EvidenceKind` value; appending any other string fails
(``qianli.services.evidence``), so a new kind of evidence is added here, with its view and its label,
or not at all. ``tests/cases/test_evidence_kinds.py`` fails when a member lacks either. The dossier
(``evidence/<view>.json``) and the evidence report read :data:`EVIDENCE_VIEW`; the HR console and
the report read :data:`EVIDENCE_LABELS`. Standard library only.
"""

from __future__ import annotations

from enum import Enum

from cases.states import CaseAction

__all__ = ["EvidenceKind", "DossierView", "EVIDENCE_VIEW", "EVIDENCE_LABELS", "evidence_label", "transition_kind"]


class DossierView(str, Enum):
    """The ``evidence/<view>.json`` member of the dossier an entry is listed in (besides the chain)."""

    CASE = "case"            # the case's own course: opened, form, letter signed, alerts, exports
    IDENTITY = "identity"    # WeChat binding, SMS codes, face consent/enrolment/checks, signing intents
    REMINDERS = "reminders"  # every reminder scheduled, sent, failed or escalated
    APPROVALS = "approvals"  # HR review: approvals, returns, last-day agreements, withdrawals, countersignature
    CHAT = "chat"            # instant messages HR recorded as the notice
    ABSCONDING = "absconding"  # leaving without notice: confirmation, notices and their service, answers, union, dismissal
    OFFBOARDING = "offboarding"  # handover tasks: generated, completed, cancelled, reminded, escalated
    ACCESS = "access"        # access revocation, payroll stop, events sent to the company's systems, 权限验证


class EvidenceKind(str, Enum):
    # the case
    CASE_OPENED = "case_opened"
    CASE_FORM_UPDATED = "case_form_updated"
    CASE_SUBMIT_LETTER = "case_submit_letter"
    CASE_APPROVE_FIRST = "case_approve_first"
    CASE_APPROVE_FINAL = "case_approve_final"
    CASE_RETURN_FOR_REVISION = "case_return_for_revision"
    CASE_WITHDRAW = "case_withdraw"
    CASE_CLOSE = "case_close"
    LETTER_SIGNED = "letter_signed"
    LETTER_COUNTERSIGNED = "letter_countersigned"
    HR_ALERT_RAISED = "hr_alert_raised"
    DOSSIER_EXPORTED = "dossier_exported"
    DATES_RECOMPUTED = "dates_recomputed"
    # the end of the relationship (art. 50): certificate of termination, closing
    TERMINATION_CERTIFICATE_ISSUED = "termination_certificate_issued"
    TERMINATION_CERTIFICATE_DOWNLOADED = "termination_certificate_downloaded"
    EMPLOYEE_DEACTIVATED = "employee_deactivated"
    FACE_DATA_DELETED = "face_data_deleted"
    # HR review
    REVIEW_LAST_DAY_PROPOSED = "review_last_day_proposed"
    REVIEW_LAST_DAY_CONFIRMED = "review_last_day_confirmed"
    REVIEW_LAST_DAY_DECLINED = "review_last_day_declined"
    AGREEMENT_ADDENDUM_SIGNED = "agreement_addendum_signed"
    WITHDRAWAL_REQUESTED = "withdrawal_requested"
    WITHDRAWAL_DECLINED = "withdrawal_declined"
    CHAT_EVIDENCE_RECORDED = "chat_evidence_recorded"
    CHAT_NOTICE_CONFIRMED = "chat_notice_confirmed"
    CHAT_NOTICE_DISPUTED = "chat_notice_disputed"
    # identity
    WECHAT_BIND = "wechat_bind"
    WECHAT_UNBIND = "wechat_unbind"
    SMS_CODE_SENT = "sms_code_sent"
    SMS_CODE_VERIFIED = "sms_code_verified"
    FACE_CONSENT_GIVEN = "face_consent_given"
    FACE_CONSENT_WITHDRAWN = "face_consent_withdrawn"
    FACE_ENROLLED = "face_enrolled"
    FACE_UNLOCKED = "face_unlocked"
    FACE_VERIFIED = "face_verified"
    FACE_VERIFICATION_FAILED = "face_verification_failed"
    SIGNING_INTENT_ISSUED = "signing_intent_issued"
    IDENTITY_PHONE_CHANGED = "identity_phone_changed"
    IDENTITY_CHANGE_CONFIRMED = "identity_change_confirmed"
    IDENTITY_CHANGE_OBJECTED = "identity_change_objected"
    FACE_REFERENCE_CONFIRMED = "face_reference_confirmed"
    FACE_REFERENCE_REJECTED = "face_reference_rejected"
    IDENTITY_WECHAT_REBOUND = "identity_wechat_rebound"
    # reminders
    REMINDER_SCHEDULE_CREATED = "reminder_schedule_created"
    REMINDER_SENT = "reminder_sent"
    REMINDER_DROPPED = "reminder_dropped"
    REMINDER_FALLBACK = "reminder_fallback"
    REMINDER_ATTEMPT_FAILED = "reminder_attempt_failed"
    REMINDER_FAILED = "reminder_failed"
    REMINDER_ESCALATED = "reminder_escalated"
    REMINDERS_STOPPED = "reminders_stopped"
    # leaving without notice (擅自离职)
    DEPARTURE_CONFIRMED = "departure_confirmed"
    CASE_SERVE_RETURN_NOTICE = "case_serve_return_notice"
    CASE_RETURN_TO_WORK = "case_return_to_work"
    CASE_EXPLAIN = "case_explain"
    CASE_CONVERT_TO_RESIGNATION = "case_convert_to_resignation"
    CASE_APPROVE_DISMISSAL = "case_approve_dismissal"
    CASE_DISMISS = "case_dismiss"
    NOTICE_READ = "notice_read"
    POSTAL_DELIVERY_RECORDED = "postal_delivery_recorded"
    POSTAL_DELIVERY_UPDATED = "postal_delivery_updated"
    ABSENCE_ANSWERED = "absence_answered"
    UNION_NOTIFIED = "union_notified"
    RESIGNATION_OPENED_FROM_ABSENCE = "resignation_opened_from_absence"
    OFFBOARDING_AFTER_DISMISSAL = "offboarding_after_dismissal"
    # offboarding (handover tasks)
    OFFBOARDING_STARTED = "offboarding_started"
    TASK_COMPLETED = "task_completed"
    TASKS_CANCELLED = "tasks_cancelled"
    TASK_REMINDER_SENT = "task_reminder_sent"
    TASK_REMINDER_FAILED = "task_reminder_failed"
    TASK_ESCALATED = "task_escalated"
    # alumni (issue 17)
    ALUMNI_CONSENT_GIVEN = "alumni_consent_given"
    ALUMNI_CONSENT_WITHDRAWN = "alumni_consent_withdrawn"
    ALUMNI_JOINED = "alumni_joined"
    PERSONAL_DATA_PURGED = "personal_data_purged"
    # access revocation and the company's systems (webhooks, WeCom)
    ACCESS_REVOKE_SCHEDULED = "access_revoke_scheduled"
    ACCESS_REVOKE_SENT = "access_revoke_sent"
    ACCESS_REVOKE_CANCELLED = "access_revoke_cancelled"
    ACCESS_REVOKE_CONFIRMED = "access_revoke_confirmed"
    ACCESS_REVOKE_FAILED = "access_revoke_failed"
    PAYROLL_STOP_SENT = "payroll_stop_sent"
    WEBHOOK_DELIVERED = "webhook_delivered"
    WEBHOOK_DELIVERY_FAILED = "webhook_delivery_failed"

    def __str__(self) -> str:
        return self.value


_K, _V = EvidenceKind, DossierView

EVIDENCE_VIEW: dict[EvidenceKind, DossierView] = {
    _K.CASE_OPENED: _V.CASE, _K.CASE_FORM_UPDATED: _V.CASE, _K.CASE_SUBMIT_LETTER: _V.CASE, _K.LETTER_SIGNED: _V.CASE,
    _K.HR_ALERT_RAISED: _V.CASE, _K.DOSSIER_EXPORTED: _V.CASE, _K.DATES_RECOMPUTED: _V.CASE,
    _K.TERMINATION_CERTIFICATE_ISSUED: _V.CASE, _K.TERMINATION_CERTIFICATE_DOWNLOADED: _V.CASE,
    _K.EMPLOYEE_DEACTIVATED: _V.CASE, _K.FACE_DATA_DELETED: _V.IDENTITY,
    _K.AGREEMENT_ADDENDUM_SIGNED: _V.APPROVALS,
    _K.CASE_APPROVE_FIRST: _V.APPROVALS, _K.CASE_APPROVE_FINAL: _V.APPROVALS, _K.CASE_RETURN_FOR_REVISION: _V.APPROVALS,
    _K.CASE_WITHDRAW: _V.APPROVALS, _K.CASE_CLOSE: _V.APPROVALS, _K.LETTER_COUNTERSIGNED: _V.APPROVALS,
    _K.REVIEW_LAST_DAY_PROPOSED: _V.APPROVALS, _K.REVIEW_LAST_DAY_CONFIRMED: _V.APPROVALS,
    _K.REVIEW_LAST_DAY_DECLINED: _V.APPROVALS, _K.WITHDRAWAL_REQUESTED: _V.APPROVALS,
    _K.WITHDRAWAL_DECLINED: _V.APPROVALS,
    _K.CHAT_EVIDENCE_RECORDED: _V.CHAT, _K.CHAT_NOTICE_CONFIRMED: _V.CHAT, _K.CHAT_NOTICE_DISPUTED: _V.CHAT,
    _K.IDENTITY_PHONE_CHANGED: _V.IDENTITY, _K.IDENTITY_CHANGE_CONFIRMED: _V.IDENTITY,
    _K.IDENTITY_CHANGE_OBJECTED: _V.IDENTITY, _K.FACE_REFERENCE_CONFIRMED: _V.IDENTITY,
    _K.FACE_REFERENCE_REJECTED: _V.IDENTITY, _K.IDENTITY_WECHAT_REBOUND: _V.IDENTITY,
    _K.REMINDERS_STOPPED: _V.REMINDERS,
    _K.WECHAT_BIND: _V.IDENTITY, _K.WECHAT_UNBIND: _V.IDENTITY, _K.SMS_CODE_SENT: _V.IDENTITY,
    _K.SMS_CODE_VERIFIED: _V.IDENTITY, _K.FACE_CONSENT_GIVEN: _V.IDENTITY, _K.FACE_CONSENT_WITHDRAWN: _V.IDENTITY,
    _K.FACE_ENROLLED: _V.IDENTITY, _K.FACE_UNLOCKED: _V.IDENTITY, _K.FACE_VERIFIED: _V.IDENTITY,
    _K.FACE_VERIFICATION_FAILED: _V.IDENTITY, _K.SIGNING_INTENT_ISSUED: _V.IDENTITY,
    _K.REMINDER_SCHEDULE_CREATED: _V.REMINDERS, _K.REMINDER_SENT: _V.REMINDERS, _K.REMINDER_DROPPED: _V.REMINDERS,
    _K.REMINDER_FALLBACK: _V.REMINDERS, _K.REMINDER_ATTEMPT_FAILED: _V.REMINDERS, _K.REMINDER_FAILED: _V.REMINDERS,
    _K.REMINDER_ESCALATED: _V.REMINDERS,
    _K.DEPARTURE_CONFIRMED: _V.ABSCONDING, _K.CASE_SERVE_RETURN_NOTICE: _V.ABSCONDING,
    _K.CASE_RETURN_TO_WORK: _V.ABSCONDING, _K.CASE_EXPLAIN: _V.ABSCONDING,
    _K.CASE_CONVERT_TO_RESIGNATION: _V.ABSCONDING, _K.CASE_APPROVE_DISMISSAL: _V.ABSCONDING,
    _K.CASE_DISMISS: _V.ABSCONDING, _K.NOTICE_READ: _V.ABSCONDING, _K.POSTAL_DELIVERY_RECORDED: _V.ABSCONDING,
    _K.POSTAL_DELIVERY_UPDATED: _V.ABSCONDING, _K.ABSENCE_ANSWERED: _V.ABSCONDING, _K.UNION_NOTIFIED: _V.ABSCONDING,
    _K.RESIGNATION_OPENED_FROM_ABSENCE: _V.ABSCONDING, _K.OFFBOARDING_AFTER_DISMISSAL: _V.ABSCONDING,
    _K.OFFBOARDING_STARTED: _V.OFFBOARDING, _K.TASK_COMPLETED: _V.OFFBOARDING, _K.TASKS_CANCELLED: _V.OFFBOARDING,
    _K.TASK_REMINDER_SENT: _V.OFFBOARDING, _K.TASK_REMINDER_FAILED: _V.OFFBOARDING, _K.TASK_ESCALATED: _V.OFFBOARDING,
    _K.ALUMNI_CONSENT_GIVEN: _V.IDENTITY, _K.ALUMNI_CONSENT_WITHDRAWN: _V.IDENTITY, _K.ALUMNI_JOINED: _V.CASE,
    _K.PERSONAL_DATA_PURGED: _V.CASE,
    _K.ACCESS_REVOKE_SCHEDULED: _V.ACCESS, _K.ACCESS_REVOKE_SENT: _V.ACCESS, _K.ACCESS_REVOKE_CANCELLED: _V.ACCESS,
    _K.ACCESS_REVOKE_CONFIRMED: _V.ACCESS, _K.ACCESS_REVOKE_FAILED: _V.ACCESS, _K.PAYROLL_STOP_SENT: _V.ACCESS,
    _K.WEBHOOK_DELIVERED: _V.ACCESS, _K.WEBHOOK_DELIVERY_FAILED: _V.ACCESS,
}

EVIDENCE_LABELS: dict[EvidenceKind, str] = {
    _K.CASE_OPENED: "离职申请创建（通知送达）",
    _K.CASE_FORM_UPDATED: "离职表单更新",
    _K.CASE_SUBMIT_LETTER: "提交已签名辞职信",
    _K.CASE_APPROVE_FIRST: "一级审核通过",
    _K.CASE_APPROVE_FINAL: "终审通过",
    _K.CASE_RETURN_FOR_REVISION: "退回修改",
    _K.CASE_WITHDRAW: "撤回离职申请",
    _K.CASE_CLOSE: "结案",
    _K.LETTER_SIGNED: "员工签署辞职信",
    _K.LETTER_COUNTERSIGNED: "公司会签辞职信",
    _K.HR_ALERT_RAISED: "HR 提醒",
    _K.DOSSIER_EXPORTED: "导出离职档案",
    _K.DATES_RECOMPUTED: "按公布的节假日安排重新计算日期",
    _K.TERMINATION_CERTIFICATE_ISSUED: "出具解除劳动合同证明（公司电子印章）",
    _K.TERMINATION_CERTIFICATE_DOWNLOADED: "员工下载解除劳动合同证明",
    _K.EMPLOYEE_DEACTIVATED: "结案：员工账号停用、登录失效",
    _K.FACE_DATA_DELETED: "删除人脸模板和参考照片（处理目的已实现）",
    _K.AGREEMENT_ADDENDUM_SIGNED: "签署提前离职协议（劳动合同法第三十六条；员工签名、公司盖章）",
    _K.REVIEW_LAST_DAY_PROPOSED: "提出提前的最后工作日（协商一致）",
    _K.REVIEW_LAST_DAY_CONFIRMED: "员工确认最后工作日",
    _K.REVIEW_LAST_DAY_DECLINED: "员工不同意提前的最后工作日",
    _K.WITHDRAWAL_REQUESTED: "员工申请撤回",
    _K.WITHDRAWAL_DECLINED: "公司不同意撤回",
    _K.CHAT_EVIDENCE_RECORDED: "录入聊天记录证据",
    _K.CHAT_NOTICE_CONFIRMED: "员工确认聊天记录为辞职通知",
    _K.CHAT_NOTICE_DISPUTED: "员工否认提出离职",
    _K.IDENTITY_PHONE_CHANGED: "手机号变更（身份要素）",
    _K.IDENTITY_CHANGE_CONFIRMED: "员工确认身份要素变更",
    _K.IDENTITY_CHANGE_OBJECTED: "员工反对身份要素变更",
    _K.FACE_REFERENCE_CONFIRMED: "员工确认 HR 提供的人脸参考",
    _K.FACE_REFERENCE_REJECTED: "员工不认可 HR 提供的人脸参考（已删除）",
    _K.IDENTITY_WECHAT_REBOUND: "HR 解绑后重新绑定微信（身份要素变更）",
    _K.REMINDERS_STOPPED: "催告已停止",
    _K.WECHAT_BIND: "绑定微信",
    _K.WECHAT_UNBIND: "解绑微信",
    _K.SMS_CODE_SENT: "发送短信验证码",
    _K.SMS_CODE_VERIFIED: "短信验证码验证通过",
    _K.FACE_CONSENT_GIVEN: "同意人脸信息处理",
    _K.FACE_CONSENT_WITHDRAWN: "撤回人脸信息处理同意",
    _K.FACE_ENROLLED: "登记人脸照片",
    _K.FACE_UNLOCKED: "解锁人脸核验",
    _K.FACE_VERIFIED: "人脸核验通过",
    _K.FACE_VERIFICATION_FAILED: "人脸核验未通过",
    _K.SIGNING_INTENT_ISSUED: "签署意愿确认（身份核验完成）",
    _K.REMINDER_SCHEDULE_CREATED: "建立提醒计划",
    _K.REMINDER_SENT: "发送提醒",
    _K.REMINDER_DROPPED: "提醒未发送（案件状态已变）",
    _K.REMINDER_FALLBACK: "提醒改用短信发送",
    _K.REMINDER_ATTEMPT_FAILED: "提醒发送失败（将重试）",
    _K.REMINDER_FAILED: "提醒发送失败",
    _K.REMINDER_ESCALATED: "逾期未交辞职信，已通知 HR",
    _K.DEPARTURE_CONFIRMED: "HR 确认擅自离职（证据链起点）",
    _K.CASE_SERVE_RETURN_NOTICE: "送达返岗通知书（公司电子印章）",
    _K.CASE_RETURN_TO_WORK: "员工返岗，案件结束（不解除）",
    _K.CASE_EXPLAIN: "员工作出说明，待 HR 处理",
    _K.CASE_CONVERT_TO_RESIGNATION: "员工改为辞职（转为劳动合同法第三十七条辞职）",
    _K.CASE_APPROVE_DISMISSAL: "解除劳动合同一级审批通过",
    _K.CASE_DISMISS: "解除劳动合同（劳动合同法第三十九条第二项），送达解除通知书",
    _K.NOTICE_READ: "员工在小程序内阅读通知书（已读回执）",
    _K.POSTAL_DELIVERY_RECORDED: "登记邮寄送达（快递单号）",
    _K.POSTAL_DELIVERY_UPDATED: "邮寄送达状态更新（签收或退回）",
    _K.ABSENCE_ANSWERED: "员工答复返岗通知",
    _K.UNION_NOTIFIED: "登记通知工会（劳动合同法第四十三条）",
    _K.RESIGNATION_OPENED_FROM_ABSENCE: "员工辞职，已开立辞职案件",
    _K.OFFBOARDING_AFTER_DISMISSAL: "解除后办理离职手续（立即收回权限、出具离职证明）",
    _K.OFFBOARDING_STARTED: "生成离职交接任务",
    _K.TASK_COMPLETED: "交接任务已完成",
    _K.TASKS_CANCELLED: "交接任务已取消",
    _K.TASK_REMINDER_SENT: "催办交接任务负责人",
    _K.TASK_REMINDER_FAILED: "交接任务催办发送失败",
    _K.TASK_ESCALATED: "交接任务逾期，已通知 HR",
    _K.ALUMNI_CONSENT_GIVEN: "同意加入离职人才库",
    _K.ALUMNI_CONSENT_WITHDRAWN: "撤回离职人才库同意",
    _K.ALUMNI_JOINED: "转入离职人才库",
    _K.PERSONAL_DATA_PURGED: "按保存期限删除个人信息",
    _K.ACCESS_REVOKE_SCHEDULED: "已安排权限回收（最后工作日 23:59）",
    _K.ACCESS_REVOKE_SENT: "已通知各系统回收权限",
    _K.ACCESS_REVOKE_CANCELLED: "已取消权限回收",
    _K.ACCESS_REVOKE_CONFIRMED: "系统确认已回收权限（权限验证）",
    _K.ACCESS_REVOKE_FAILED: "权限回收失败",
    _K.PAYROLL_STOP_SENT: "已通知财务停发薪资",
    _K.WEBHOOK_DELIVERED: "事件已送达外部系统",
    _K.WEBHOOK_DELIVERY_FAILED: "事件推送失败（重试已用尽）",
}


def transition_kind(action: CaseAction) -> EvidenceKind:
    """The kind recorded for a state-machine transition (``case_<action>``)."""
    return EvidenceKind(f"case_{action.value}")


def evidence_label(action: str) -> str:
    """The zh-CN label of an action (entries written before a kind was renamed show their raw action)."""
    try:
        return EVIDENCE_LABELS[EvidenceKind(action)]
    except ValueError:
        return action
