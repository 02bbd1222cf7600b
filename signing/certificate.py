"""The certificate of termination (解除劳动合同证明) as a PDF/A-2b, sealed by the company.

Labor Contract Law art. 50 and Implementing Regulations art. 24: the employer issues it when the
contract ends and it states the contract term, the date of termination, the position and the years
of service with this employer. It carries no evaluation of the employee (no performance, no
conduct); the legal ground is stated only where it is neutral (the employee's own notice, art. 37;
a mutual agreement, art. 36) or where the employee asked for it. Deterministic like the letter:
the same data give the same bytes. The page reserves one box, the company seal, whose page and
rectangle (PDF points) :func:`render_certificate` returns.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from signing.letter import MM, _d, new_pdfa, xmp_packet

__all__ = ["CertificateData", "CertificateLayout", "render_certificate", "service_length", "CERTIFICATE_TITLE"]

CERTIFICATE_TITLE = "解除劳动合同证明"


@dataclass(frozen=True)
class CertificateData:
    case_id: str
    company_name: str
    employee_name: str
    employee_no: str
    national_id_masked: str | None  # e.g. 110105********002X; None when the roster has none
    department: str
    position: str
    hire_date: date
    contract_term: str
    termination_date: date
    termination_clause: str  # the neutral sentence on how the contract ended (see qianli.services.certificate)
    issue_date: date


@dataclass(frozen=True)
class CertificateLayout:
    page: int  # 0-based
    seal_box: tuple[int, int, int, int]


def service_length(start: date, end: date) -> tuple[int, int]:
    """Whole years and remaining whole months worked from ``start`` to ``end``, both days included
    (hired 2023-03-01, last day 2026-02-28: three years)."""
    after = end + timedelta(days=1)
    months = (after.year - start.year) * 12 + (after.month - start.month) - (1 if after.day < start.day else 0)
    months = max(0, months)
    return months // 12, months % 12


def _service_text(start: date, end: date) -> str:
    years, months = service_length(start, end)
    if years == 0 and months == 0:
        return "不满一个月"
    parts = ([f"{years}年"] if years else []) + ([f"{months}个月"] if months else [])
    return "".join(parts)


def _xmp(data: CertificateData, created: datetime) -> str:
    return xmp_packet(created, title=f"{CERTIFICATE_TITLE} - {data.employee_name}", creators=(data.company_name,),
                      description=f"QianLi case {data.case_id} certificate of termination (Labor Contract Law art. 50)")


def certificate_rows(data: CertificateData) -> list[tuple[str, str]]:
    """The facts as (label, value) rows, in the order the certificate shows them."""
    rows = [("姓名", data.employee_name), ("工号", data.employee_no)]
    if data.national_id_masked:
        rows.append(("身份证号", data.national_id_masked))
    rows += [
        ("劳动合同期限", data.contract_term),
        ("工作岗位", f"{data.department} {data.position}".strip()),
        ("入职日期", _d(data.hire_date)),
        ("劳动合同解除日期", _d(data.termination_date)),
        ("在本单位工作年限", f"{_service_text(data.hire_date, data.termination_date)}"
                       f"（{_d(data.hire_date)}至{_d(data.termination_date)}）"),
    ]
    return rows


def render_certificate(data: CertificateData) -> tuple[bytes, CertificateLayout]:
    pdf = new_pdfa(on=data.issue_date, title=f"{CERTIFICATE_TITLE} - {data.employee_name}",
                   author=data.company_name, subject=f"QianLi case {data.case_id}",
                   xmp=lambda created: _xmp(data, created))
    w = pdf.epw
    pdf.set_font("zh", size=20)
    pdf.cell(w, 14, CERTIFICATE_TITLE, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("zh", size=12)
    pdf.multi_cell(w, 8, f"　　兹证明{data.employee_name}（工号 {data.employee_no}）与{data.company_name}的劳动合同"
                         f"已于{_d(data.termination_date)}解除。{data.termination_clause}具体情况如下：",
                   new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    for label, value in certificate_rows(data):
        pdf.set_font("zh", size=11)
        y0 = pdf.get_y()
        pdf.multi_cell(45, 8, label + "：", new_x="RIGHT", new_y="TOP")
        pdf.multi_cell(w - 45, 8, value, new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(max(pdf.get_y(), y0 + 8))
    pdf.ln(4)
    pdf.set_font("zh", size=12)
    pdf.multi_cell(w, 8, "　　特此证明。", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("zh", size=9)
    pdf.multi_cell(w, 6, "　　本证明依据《中华人民共和国劳动合同法》第五十条及《中华人民共和国劳动合同法实施条例》"
                         "第二十四条出具，由用人单位加盖电子印章（PAdES 电子签名），可在签离系统或任何 PDF 阅读器中核验。",
                   new_x="LMARGIN", new_y="NEXT")

    block = 60
    if pdf.get_y() + block > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.ln(6)
    top = pdf.get_y()
    half = w / 2
    pdf.set_font("zh", size=11)
    pdf.set_xy(pdf.l_margin + half, top)
    pdf.cell(half, 7, f"用人单位：{data.company_name}")
    box_top, box_h = top + 8, 36
    pdf.set_xy(pdf.l_margin + half, box_top + box_h + 2)
    pdf.cell(half, 7, f"出具日期：{_d(data.issue_date)}")
    pdf.set_font("zh", size=8)
    pdf.set_auto_page_break(False)  # the footer sits in the bottom margin, on this page
    pdf.set_xy(pdf.l_margin, pdf.h - 18)
    pdf.cell(w, 5, f"签离 QianLi · 案件编号 {data.case_id} · 解除劳动合同证明（用人单位电子印章）", align="C")
    ph = pdf.h
    x1, x2 = (pdf.l_margin + half) * MM, (pdf.l_margin + w - 6) * MM
    y2, y1 = (ph - box_top) * MM, (ph - box_top - box_h) * MM
    layout = CertificateLayout(page=pdf.page - 1, seal_box=(round(x1), round(y1), round(x2), round(y2)))
    buf = io.BytesIO()
    pdf.output(buf)
    return buf.getvalue(), layout
