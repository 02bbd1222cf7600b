"""The two written notices of a departure without notice (擅自离职), as PDF/A-2b in Chinese:

* the return-to-work notice (返岗通知书): the absent working days, the handbook clause the absence
  breaches, the deadline to return or explain and the consequence;
* the dismissal notice (解除劳动合同通知书, art. 39(2)): the return-to-work notice and its service,
  the deadline that passed, the clause, the union notified (art. 43), the termination date, and
  what the company owes (wages for the days worked, the certificate, art. 50).

The company seals each (``qianli.services.signing.seal_with_company``, PAdES B-LTA) in the right-hand
box; the left-hand box names the person served. Deterministic: the same data give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from cases.absconding import ARTICLE_39_2, ARTICLE_43
from cases.clock import SHANGHAI
from signing.letter import LetterLayout, _d, finish_with_signature_block, new_pdfa, xmp_packet

__all__ = ["ReturnNoticeData", "DismissalNoticeData", "render_return_notice", "render_dismissal_notice",
           "RETURN_NOTICE_TITLE", "DISMISSAL_NOTICE_TITLE"]

RETURN_NOTICE_TITLE = "返岗通知书"
DISMISSAL_NOTICE_TITLE = "解除劳动合同通知书"


@dataclass(frozen=True)
class ReturnNoticeData:
    case_id: str
    company_name: str
    employee_name: str
    employee_no: str
    department: str
    position: str
    absent_days: tuple[date, ...]
    last_seen_on: date | None
    clause_reference: str
    clause_text: str
    served_on: date
    deadline: date
    deadline_working_days: int
    deadline_provisional: bool = False


@dataclass(frozen=True)
class DismissalNoticeData:
    case_id: str
    company_name: str
    employee_name: str
    employee_no: str
    department: str
    position: str
    absent_days: tuple[date, ...]
    clause_reference: str
    clause_text: str
    return_notice_served_on: date
    deadline: date
    postal: tuple[str, ...]  # "EMS 1234567890（2026年10月12日寄出，已签收）"
    explanation_received: bool
    union_name: str
    union_notified_at: datetime
    union_response: str
    termination_date: date
    issued_on: date


def _document(title: str, employee_name: str, company_name: str, case_id: str, what: str, on: date):
    """The house PDF/A page of a notice the company issues (dated ``on``: the same data, the same bytes)."""
    full = f"{title} - {employee_name}"
    return new_pdfa(on=on, title=full, author=company_name, subject=f"QianLi case {case_id}",
                    xmp=lambda created: xmp_packet(created, title=full, creators=(company_name,),
                                                   description=f"QianLi case {case_id} {what}"))


def _days(days: tuple[date, ...]) -> str:
    return "、".join(_d(d) for d in days) + f"（共 {len(days)} 个工作日）"


def _head(pdf, w: float, title: str, name: str, employee_no: str, department: str, position: str) -> None:
    pdf.set_font("zh", size=20)
    pdf.cell(w, 14, title, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("zh", size=12)
    who = "，".join(x for x in (f"工号 {employee_no}", department, position) if x)
    pdf.multi_cell(w, 8, f"{name}（{who}）：", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _paragraphs(pdf, w: float, items: list[str]) -> None:
    for text in items:
        pdf.multi_cell(w, 8, "　　" + text, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)


def render_return_notice(data: ReturnNoticeData) -> tuple[bytes, LetterLayout]:
    pdf = _document(RETURN_NOTICE_TITLE, data.employee_name, data.company_name, data.case_id, "return-to-work notice",
                    data.served_on)
    w = pdf.epw
    _head(pdf, w, RETURN_NOTICE_TITLE, data.employee_name, data.employee_no, data.department, data.position)
    seen = f"您最后一次出勤的日期为{_d(data.last_seen_on)}。" if data.last_seen_on else ""
    provisional = "（该期间的国务院节假日安排尚未公布，为按法定节假日推算的暂定日期）" if data.deadline_provisional else ""
    _paragraphs(pdf, w, [
        f"经公司考勤记录核查，您自{_d(data.absent_days[0])}起未到岗出勤，也未办理请假手续。缺勤的工作日为："
        f"{_days(data.absent_days)}。{seen}",
        f"上述缺勤违反了公司规章制度{data.clause_reference}的规定：“{data.clause_text}”",
        f"请您于{_d(data.deadline)}（含，北京时间 24:00 前）{provisional}返回公司上班，或通过签离小程序向公司书面说明"
        f"缺勤原因并提交相关证明材料。上述期限自本通知送达之日的次日起计算，共 {data.deadline_working_days} 个工作日"
        "（法定节假日、休息日不计入，调休上班日计入）。",
        f"逾期既未返岗又未作出说明、或说明的理由不成立的，公司将视为您严重违反用人单位的规章制度，依据{ARTICLE_39_2}"
        f"的规定解除与您的劳动合同，并依照{ARTICLE_43}事先将理由通知工会。您已出勤期间的工资将依法足额支付。",
        "您可以在签离小程序内查看本通知并答复：“我已返岗”“作出说明（可上传证明材料）”或“我要辞职”。"
        "本通知同时通过短信、微信消息发送，并邮寄至您在劳动合同中约定的送达地址。",
    ])
    return finish_with_signature_block(
        pdf, w, employee_label=f"受送达人：{data.employee_name}", company_label=f"{data.company_name}（电子印章）：",
        signed_on=data.served_on,
        footer=f"签离 QianLi · 案件编号 {data.case_id} · 返岗通知书（公司电子印章 PAdES B-LTA）")


def render_dismissal_notice(data: DismissalNoticeData) -> tuple[bytes, LetterLayout]:
    pdf = _document(DISMISSAL_NOTICE_TITLE, data.employee_name, data.company_name, data.case_id,
                    "dismissal notice (art. 39(2))", data.issued_on)
    w = pdf.epw
    _head(pdf, w, DISMISSAL_NOTICE_TITLE, data.employee_name, data.employee_no, data.department, data.position)
    post = f"，并邮寄至您约定的送达地址（{'；'.join(data.postal)}）" if data.postal else ""
    answered = "公司审查了您的说明，认为缺勤理由不成立" if data.explanation_received else "您既未返岗，也未作出说明"
    response = f"工会意见：{data.union_response}" if data.union_response else "工会未提出异议"
    notified = data.union_notified_at.astimezone(SHANGHAI)
    _paragraphs(pdf, w, [
        f"公司于{_d(data.return_notice_served_on)}通过签离小程序、短信和微信消息向您送达《返岗通知书》{post}，"
        f"要求您于{_d(data.deadline)}（含）前返岗或书面说明缺勤原因。期限已届满，{answered}。",
        f"您自{_d(data.absent_days[0])}起连续缺勤，缺勤的工作日为：{_days(data.absent_days)}，违反了公司规章制度"
        f"{data.clause_reference}的规定：“{data.clause_text}”，属于严重违反用人单位的规章制度。",
        f"公司已于{_d(notified.date())}将解除劳动合同的理由通知{data.union_name}（{ARTICLE_43}），{response}。",
        f"依据{ARTICLE_39_2}的规定，公司决定自{_d(data.termination_date)}起解除与您的劳动合同。",
        "公司将依法足额支付您已出勤期间的工资，出具解除劳动合同的证明，并在十五日内为您办理档案和社会保险关系转移手续"
        "（劳动合同法第五十条）。请您与公司联系办理工作交接。",
    ])
    return finish_with_signature_block(
        pdf, w, employee_label=f"受送达人：{data.employee_name}", company_label=f"{data.company_name}（电子印章）：",
        signed_on=data.issued_on,
        footer=f"签离 QianLi · 案件编号 {data.case_id} · 解除劳动合同通知书（公司电子印章 PAdES B-LTA）")
