"""The resignation letter (辞职通知书) as a PDF: Chinese, fonts embedded and subset, built as PDF/A-2b.

:func:`render_letter` is deterministic: the same :class:`LetterData` gives the same bytes, so the
SHA-256 the employee saw in ``previewLetter`` can be bound into the signing intent and checked
again at signing time. Employee text is laid out as text (fpdf2 escapes it); it is never
interpreted as markup or PDF syntax. The last page reserves two signature boxes (employee, then
company seal); :class:`LetterLayout` gives their page and rectangle in PDF points for pyHanko.
"""

from __future__ import annotations

import html
import io
import string
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

from fpdf import FPDF
from fpdf.enums import OutputIntentSubType
from fpdf.output import PDFICCProfile

from cases.reasons import REASON_LABELS
from signing.fonts import font_path, stamp_font_path

__all__ = ["LetterData", "LetterLayout", "LetterTemplate", "render_letter", "finish_with_signature_block", "new_pdfa", "xmp_packet", "font_path", "stamp_font_path",
           "REASON_LABELS"]

MM = 72 / 25.4
SOURCE_LABELS = {"miniprogram": "员工通过签离小程序提交", "instant_message": "员工通过即时消息告知，公司记录"}


@dataclass(frozen=True)
class LetterTemplate:
    """Per-company wording (company policy ``letter_template``). Placeholders: {company} {name} {employee_no}."""

    title: str = "辞职通知书"
    opening: str = ("本人{name}（工号 {employee_no}）现以书面形式通知{company}：依据《中华人民共和国劳动合同法》"
                    "第三十七条，本人提出解除与公司的劳动合同。")
    closing: str = "本人将按公司规定认真完成工作交接。特此通知。"

    @classmethod
    def from_policy(cls, policy: dict[str, Any] | None) -> LetterTemplate:
        raw = (policy or {}).get("letter_template") or {}
        values = {k: str(v)[:1000] for k, v in raw.items() if k in ("title", "opening", "closing") and v}
        return cls(**values)


class _SafeFormat(string.Formatter):
    """Only {company}, {name}, {employee_no}; anything else stays literal text."""

    def __init__(self, values: dict[str, str]):
        self.values = values

    def fill(self, text: str) -> str:
        out = []
        for literal, fname, spec, conv in self.parse(text):
            out.append(literal)
            if fname is None:
                continue
            if fname in self.values and not spec and not conv:
                out.append(self.values[fname])
            else:
                out.append("{" + fname + (("!" + conv) if conv else "") + ((":" + spec) if spec else "") + "}")
        return "".join(out)


@dataclass(frozen=True)
class LetterData:
    case_id: str
    company_name: str
    employee_name: str
    employee_no: str
    department: str
    position: str
    reason_category: str | None
    reason_text: str
    requested_last_day: date | None
    earliest_lawful_last_day: date
    notice_arrival_date: date
    source: str
    probation: bool
    handover_items: tuple[dict[str, Any], ...] = ()
    letter_date: date = field(default_factory=date.today)
    template: LetterTemplate = field(default_factory=LetterTemplate)


@dataclass(frozen=True)
class LetterLayout:
    """Signature boxes on the last page: (x1, y1, x2, y2) in PDF points, origin bottom-left."""

    page: int  # 0-based
    employee_box: tuple[int, int, int, int]
    company_box: tuple[int, int, int, int]


def _d(d: date | None) -> str:
    return f"{d.year}年{d.month}月{d.day}日" if d else "（未填写）"


SRGB_ICC_PATH = Path(__file__).resolve().parent / "data" / "srgb.icc"


@lru_cache(maxsize=1)
def _srgb_icc() -> bytes:
    """The output intent's sRGB profile, a shipped file (scripts/make-srgb-icc.py): a profile built at run
    time carries its creation time in the header, which made letters differ between server processes."""
    return SRGB_ICC_PATH.read_bytes()


def xmp_packet(created: datetime, *, title: str, creators: tuple[str, ...], description: str) -> str:
    """Our own XMP packet (fpdf2's would stamp the current time): every date fixed to ``created``."""
    e = lambda v: html.escape(str(v), quote=True)  # noqa: E731
    when = created.isoformat(timespec="seconds")
    return "\n".join([
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
        ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"',
        '   xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:xmp="http://ns.adobe.com/xap/1.0/"',
        '   xmlns:pdf="http://ns.adobe.com/pdf/1.3/" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">',
        f'  <rdf:Description rdf:about="" xmp:CreatorTool="QianLi 签离" xmp:CreateDate="{when}"'
        f' xmp:ModifyDate="{when}" xmp:MetadataDate="{when}" pdf:Producer="QianLi 签离 (fpdf2)">',
        "   <pdfaid:part>2</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>",
        f'   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{e(title)}</rdf:li></rdf:Alt></dc:title>',
        "   <dc:creator><rdf:Seq>" + "".join(f"<rdf:li>{e(c)}</rdf:li>" for c in creators) + "</rdf:Seq></dc:creator>",
        f'   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{e(description)}</rdf:li></rdf:Alt>'
        "</dc:description>",
        "  </rdf:Description>",
        " </rdf:RDF>",
        "</x:xmpmeta>",
    ])


def _xmp(data: LetterData, created: datetime) -> str:
    """The letter's XMP: dates fixed to the letter date."""
    return xmp_packet(created, title=f"{data.template.title} - {data.employee_name}", creators=(data.employee_name,),
                      description=f"QianLi case {data.case_id}")


def new_pdfa(*, on: date, title: str, author: str, subject: str, xmp: Callable[[datetime], str]) -> FPDF:
    """An A4 PDF/A-2b document with the zh font, 25 mm margins and its first page, dated ``on`` (00:00 UTC)
    so that the same data give the same bytes; ``xmp`` builds the XMP packet from that creation time."""
    pdf = FPDF(format="A4", unit="mm", enforce_compliance="PDFA_2B")
    created = datetime.combine(on, time(0, 0), tzinfo=timezone.utc)
    pdf.set_creation_date(created)
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_subject(subject)
    pdf.set_creator("QianLi 签离")
    pdf.set_producer("QianLi 签离 (fpdf2)")
    pdf.set_lang("zh-CN")
    pdf.add_output_intent(OutputIntentSubType.PDFA, "sRGB", "sRGB IEC61966-2.1", "https://www.color.org",
                          PDFICCProfile(contents=_srgb_icc(), n=3, alternate="DeviceRGB"), "sRGB IEC61966-2.1")
    pdf.set_xmp_metadata(xmp(created))
    pdf.add_font("zh", "", font_path(), collection_font_number=0)
    pdf.set_margins(25, 25, 25)
    pdf.set_auto_page_break(True, margin=25)
    pdf.add_page()
    return pdf


def render_letter(data: LetterData) -> tuple[bytes, LetterLayout]:
    pdf = new_pdfa(on=data.letter_date, title=f"{data.template.title} - {data.employee_name}",
                   author=data.employee_name, subject=f"QianLi case {data.case_id}",
                   xmp=lambda created: _xmp(data, created))
    fill = _SafeFormat({"company": data.company_name, "name": data.employee_name, "employee_no": data.employee_no}).fill
    w = pdf.epw

    pdf.set_font("zh", size=20)
    pdf.cell(w, 14, fill(data.template.title), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("zh", size=12)
    pdf.multi_cell(w, 8, f"致：{data.company_name}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.multi_cell(w, 8, "　　" + fill(data.template.opening), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)

    rows = [
        ("姓名", data.employee_name), ("工号", data.employee_no), ("部门", data.department or "—"),
        ("职位", data.position or "—"),
        ("离职原因类别", REASON_LABELS.get(data.reason_category or "", "（未填写）")),
        ("通知送达公司日期", f"{_d(data.notice_arrival_date)}（{SOURCE_LABELS.get(data.source, data.source)}）"),
        ("申请的最后工作日", _d(data.requested_last_day)),
        ("依法最早的最后工作日", f"{_d(data.earliest_lawful_last_day)}（"
                         f"{'试用期内提前三日通知' if data.probation else '提前三十日书面通知'}，送达当日不计入）"),
    ]
    for label, value in rows:
        pdf.set_font("zh", size=11)
        y0 = pdf.get_y()
        pdf.multi_cell(45, 7, label + "：", new_x="RIGHT", new_y="TOP")
        pdf.multi_cell(w - 45, 7, value, new_x="LMARGIN", new_y="NEXT")
        pdf.set_y(max(pdf.get_y(), y0 + 7))
    pdf.ln(2)
    pdf.set_font("zh", size=11)
    pdf.multi_cell(w, 7, "离职原因（员工本人填写）：", new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(w, 7, data.reason_text.strip() or "（未填写）", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.multi_cell(w, 7, "工作交接事项：", new_x="LMARGIN", new_y="NEXT")
    if not data.handover_items:
        pdf.multi_cell(w, 7, "（未填写，以公司安排为准）", new_x="LMARGIN", new_y="NEXT")
    for i, item in enumerate(data.handover_items, 1):
        extra = []
        if item.get("owner"):
            extra.append(f"接收人：{item['owner']}")
        if item.get("deadline"):
            dl = item["deadline"]
            extra.append(f"完成日期：{_d(dl if isinstance(dl, date) else date.fromisoformat(str(dl)))}")
        line = f"{i}. {item.get('item', '')}" + (f"（{'；'.join(extra)}）" if extra else "")
        pdf.multi_cell(w, 7, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.multi_cell(w, 8, "　　" + fill(data.template.closing), new_x="LMARGIN", new_y="NEXT")

    return finish_with_signature_block(
        pdf, w, employee_label="通知人（签名）：", company_label="公司签收（电子印章）：", signed_on=data.letter_date,
        footer=f"签离 QianLi · 案件编号 {data.case_id} · 本通知书由员工本人电子签名（PAdES）")


def finish_with_signature_block(pdf: FPDF, w: float, *, employee_label: str, company_label: str,
                                signed_on: date | None, footer: str) -> tuple[bytes, LetterLayout]:
    """Draw the two signature boxes (employee left, company seal right), the date and the footer, and
    output the PDF with the boxes' rectangles. The block is kept on one page."""
    block = 62
    if pdf.get_y() + block > pdf.h - pdf.b_margin:
        pdf.add_page()
    pdf.ln(6)
    top = pdf.get_y()
    half = w / 2
    pdf.set_font("zh", size=11)
    pdf.set_xy(pdf.l_margin, top)
    pdf.cell(half, 7, employee_label)
    pdf.set_xy(pdf.l_margin + half, top)
    pdf.cell(half, 7, company_label)
    box_top = top + 8
    box_h = 36
    pdf.set_xy(pdf.l_margin, box_top + box_h + 2)
    pdf.cell(half, 7, f"日期：{_d(signed_on)}")
    page = pdf.page - 1
    pdf.set_font("zh", size=8)
    # The footer sits inside the bottom margin: without this, the automatic page break moved it (and
    # the page the signature boxes are said to be on) to a new, otherwise empty page.
    pdf.set_auto_page_break(False)
    pdf.set_xy(pdf.l_margin, pdf.h - 18)
    pdf.cell(w, 5, footer, align="C")
    ph = pdf.h

    def box(x_mm: float) -> tuple[int, int, int, int]:
        x1, x2 = x_mm * MM, (x_mm + half - 6) * MM
        y2, y1 = (ph - box_top) * MM, (ph - box_top - box_h) * MM
        return round(x1), round(y1), round(x2), round(y2)

    layout = LetterLayout(page=page, employee_box=box(pdf.l_margin), company_box=box(pdf.l_margin + half))
    buf = io.BytesIO()
    pdf.output(buf)
    return buf.getvalue(), layout
