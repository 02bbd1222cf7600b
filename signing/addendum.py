"""The art. 36 agreement on an earlier last day (提前离职协议 / 补充协议) as a PDF/A-2b.

An earlier last day than the law's (art. 37: 30 days, 3 in probation) is a new agreement between
the employee and the company (Labor Contract Law art. 36). The addendum names the case, both
parties, the notice it follows, the lawful earliest last day and the agreed day, and who proposed
it; the employee signs it (event certificate after the same identity checks as the letter) and the
company seals it. Deterministic like the letter: the same data give the same bytes, so the SHA-256
the employee saw can be bound into the signing intent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from cases.clock import SHANGHAI
from signing.letter import LetterLayout, _d, finish_with_signature_block, new_pdfa, xmp_packet

__all__ = ["AddendumData", "render_addendum", "ADDENDUM_TITLE"]

ADDENDUM_TITLE = "关于提前解除劳动合同日期的协议"


@dataclass(frozen=True)
class AddendumData:
    case_id: str
    company_name: str
    company_code: str
    employee_name: str
    employee_no: str
    notice_arrival_date: date
    probation: bool
    earliest_lawful_last_day: date
    agreed_last_day: date
    proposed_by: str  # HR display name and role, as recorded in the evidence chain
    proposed_at: datetime  # UTC
    addendum_date: date


def _xmp(data: AddendumData, created: datetime) -> str:
    return xmp_packet(created, title=f"{ADDENDUM_TITLE} - {data.employee_name}",
                      creators=(data.employee_name, data.company_name),
                      description=f"QianLi case {data.case_id} art. 36 addendum")


def render_addendum(data: AddendumData) -> tuple[bytes, LetterLayout]:

    pdf = new_pdfa(on=data.addendum_date, title=f"{ADDENDUM_TITLE} - {data.employee_name}",
                   author=data.employee_name, subject=f"QianLi case {data.case_id}",
                   xmp=lambda created: _xmp(data, created))
    w = pdf.epw

    pdf.set_font("zh", size=18)
    pdf.cell(w, 14, ADDENDUM_TITLE, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("zh", size=12)
    pdf.multi_cell(w, 8, f"甲方（用人单位）：{data.company_name}（公司代码 {data.company_code}）", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(w, 8, f"乙方（劳动者）：{data.employee_name}（工号 {data.employee_no}）", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    notice = "试用期内提前三日" if data.probation else "提前三十日"
    proposed = data.proposed_at.astimezone(SHANGHAI).strftime("%Y年%m月%d日 %H:%M")
    clauses = [
        f"乙方于{_d(data.notice_arrival_date)}以书面形式通知甲方解除劳动合同（签离案件编号 {data.case_id}）。"
        f"依据《中华人民共和国劳动合同法》第三十七条（{notice}通知），乙方依法最早的最后工作日为"
        f"{_d(data.earliest_lawful_last_day)}。",
        f"甲方（经办人：{data.proposed_by}，{proposed}提出）与乙方依据《中华人民共和国劳动合同法》第三十六条"
        f"协商一致，同意将乙方的最后工作日提前至{_d(data.agreed_last_day)}，劳动合同于该日解除。",
        "除最后工作日外，乙方的辞职通知及其他权利义务不因本协议而改变；甲方应依法结清工资、出具解除劳动合同证明，"
        "不得以本协议为由附加其他条件。",
        "本协议经乙方电子签名（经人脸核验与短信验证码确认身份）并经甲方加盖电子印章后生效，"
        "一式一份电子文本，双方均可在签离系统中查看和下载，与纸质文本具有同等法律效力。",
    ]
    for i, text in enumerate(clauses, 1):
        pdf.multi_cell(w, 8, f"{i}. {text}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)

    return finish_with_signature_block(
        pdf, w, employee_label="乙方（签名）：", company_label="甲方（电子印章）：", signed_on=data.addendum_date,
        footer=f"签离 QianLi · 案件编号 {data.case_id} · 劳动合同法第三十六条协议（PAdES 电子签名）")
