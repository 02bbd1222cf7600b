"""The dossier's human-readable evidence report (证据报告): a Chinese PDF with embedded fonts.

Timeline of the evidence chain (Asia/Shanghai times), the documents with their SHA-256, each
signature and its verification result, and the chain status. Built with fpdf2 and WenQuanYi Zen
Hei (subset, embedded). Everything from users is drawn as text, never interpreted.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from cases.clock import beijing_text
from cases.evidence_kinds import evidence_label
from cases.states import STATE_LABELS
from signing.fonts import font_path

__all__ = ["render_report"]

SOURCE_LABELS = {"miniprogram": "小程序", "instant_message": "即时通讯消息"}


def _local(value: str | datetime | None) -> str:
    if not value:
        return "-"
    t = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return beijing_text(t)


def _summary(payload: dict[str, Any], limit: int = 160) -> str:
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(", ", ": "))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_report(*, company, case, employee, entries: list[dict[str, Any]], chain, documents: list[dict[str, Any]],
                  pdf_reports: list[dict[str, Any]], root_sha256: str, generated_at: datetime,
                  chat_notice: dict[str, Any] | None = None, identity: dict[str, Any] | None = None,
                  anchor: dict[str, Any] | None = None) -> bytes:
    from fpdf import FPDF
    from fpdf.enums import XPos, YPos

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_title(f"离职证据报告 {case.id}")
    pdf.set_author("QianLi 签离")
    pdf.set_creator("QianLi 签离")
    pdf.set_creation_date(generated_at)
    pdf.add_font("zh", "", font_path(), collection_font_number=0)
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    width = pdf.w - pdf.l_margin - pdf.r_margin

    def heading(text: str, size: int = 13) -> None:
        pdf.ln(2)
        pdf.set_font("zh", size=size)
        pdf.multi_cell(width, 8, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("zh", size=9)

    def line(text: str) -> None:
        pdf.multi_cell(width, 5, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)

    pdf.set_font("zh", size=18)
    pdf.multi_cell(width, 10, "离职证据报告", align="C", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_font("zh", size=9)
    line(f"公司：{company.name}（{company.code}）")
    line(f"案件编号：{case.id}")
    line(f"生成时间：{_local(generated_at)}（北京时间）")

    def alert_box(title: str, lines: list[str]) -> None:
        pdf.ln(2)
        pdf.set_draw_color(185, 28, 28)
        pdf.set_text_color(127, 29, 29)
        pdf.set_font("zh", size=12)
        pdf.multi_cell(width, 7, title, border="LTR", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_font("zh", size=9)
        for i, text in enumerate(lines):
            pdf.multi_cell(width, 5, text, border="LBR" if i == len(lines) - 1 else "LR",
                           new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(0, 0, 0)
        pdf.set_draw_color(0, 0, 0)

    if chat_notice and chat_notice.get("state") == "disputed":
        alert_box("！员工否认提出离职（“我没有提出离职”）", [
            f"本案件由 HR 依据聊天记录登记（{chat_notice.get('recorded_by') or '-'}，{_local(chat_notice.get('recorded_at'))}）。",
            f"员工于 {_local(chat_notice.get('answered_at'))} 在小程序中否认该消息为辞职通知。"
            + (f"员工说明：{chat_notice.get('comment')}" if chat_notice.get("comment") else ""),
            "否认后催告已停止；除非员工本人签署辞职信，案件不能审核通过。"])
    flags = (identity or {}).get("flags") or []
    if flags:
        alert_box("！签署前 30 天内的身份要素变更", [f"{_local(f.get('at'))}　{f.get('text')}" for f in flags])

    heading("一、案件概况")
    line(f"员工：{employee.name}　工号：{employee.employee_no}　部门：{employee.department or '-'}　"
         f"职位：{employee.position or '-'}")
    line(f"来源：{SOURCE_LABELS.get(case.source, case.source)}　状态：{STATE_LABELS.get(case.state, case.state)}")
    line(f"辞职通知到达时间：{_local(case.notice_arrived_at)}　试用期内：{'是' if case.probation else '否'}")
    line(f"申请的最后工作日：{case.requested_last_day or '-'}　法定最早最后工作日：{case.earliest_lawful_last_day}　"
         f"约定最后工作日：{case.agreed_last_day or '-'}")
    mark = "（暂定）" if case.dates_provisional else ""
    line(f"书面辞职信应提交日期：{case.letter_due_date}{mark}　实际提交：{_local(case.letter_submitted_at)}")
    if case.dates_provisional:
        line("注：该截止日期所在期间的国务院节假日调休安排在生成本报告时尚未公布，日期按《全国年节及纪念日放假办法》"
             "规定的法定节假日推算（法定节假日不计为工作日），为暂定日期；安排公布后系统将重新计算并记入证据链。")
    if case.reason_text:
        line(f"离职原因（员工填写）：{case.reason_text}")
    if chat_notice:
        answer = {"pending": "尚未答复", "confirmed": "员工已确认", "disputed": "员工否认提出离职"}.get(
            chat_notice.get("state"), chat_notice.get("state"))
        line(f"聊天记录原文：{chat_notice.get('text')}（{chat_notice.get('platform')}，发送时间 "
             f"{_local(chat_notice.get('sent_at'))}）　员工答复：{answer}")
        if chat_notice.get("late"):
            line(f"该消息超过补录期限后才录入，补录原因：{chat_notice.get('late_reason')}")
    for sig in (identity or {}).get("signatures") or []:
        line(f"签署身份要素（{_local(sig.get('signed_at'))}）：" + "；".join(sig.get("lines") or []))

    heading("二、证据链状态")
    if chain.ok:
        line(f"完整：共 {chain.entries} 条记录，哈希链逐条校验通过。链头摘要：{chain.head_digest}")
    else:
        line(f"不完整：第 {chain.first_broken_seq} 条记录处断裂（{chain.reason}）。")
    proof = (anchor or {}).get("anchor")
    if proof:
        seq = (anchor.get("leaf") or {}).get("seq")
        digest = (anchor.get("leaf") or {}).get("digest")
        same = any(e["seq"] == seq and e["digest"] == digest for e in entries)
        line(f"外部锚定：第 1–{seq} 条记录已于 {_local(proof.get('timestamped_at'))} 由时间戳机构（{proof.get('tsa')}）"
             f"锚定（锚点 #{proof.get('id')}，默克尔根 {proof.get('root')}）"
             + ("，与现存记录一致。" if same else f"，但现存第 {seq} 条记录与锚定值不符：证据链在锚定后被改写！")
             + (f"其后 {chain.entries - seq} 条记录尚待下一次锚定。" if same and chain.entries > seq else ""))
    elif anchor is not None:
        line("外部锚定：尚未锚定（调度器按 QIANLI_ANCHOR_INTERVAL_S 定期锚定新增记录）。")

    heading("三、时间线")
    for e in entries:
        label = evidence_label(e["action"])
        line(f"#{e['seq']}  {_local(e['occurred_at'])}  {label}  操作者：{e['actor']}")
        pdf.set_text_color(90, 90, 90)
        line(f"      {_summary(e['payload'])}")
        line(f"      摘要：{e['digest']}")
        pdf.set_text_color(0, 0, 0)

    heading("四、文件")
    if not documents:
        line("无。")
    for d in documents:
        line(f"{d['kind']}　{d['filename']}　{d['size']} 字节　{_local(d['created_at'])}")
        line(f"      SHA-256：{d['sha256']}")

    heading("五、电子签名验证结果")
    if not pdf_reports:
        line("无已签名文件。")
    for r in pdf_reports:
        if not r.get("checked"):
            line(f"{r['member']}：未验证（{r.get('reason', '')}）")
            continue
        line(f"{r['member']}：{'全部签名有效' if r.get('ok') else '验证未通过'}")
        result = r.get("result") or {}
        for sig in result.get("signatures", []) if isinstance(result, dict) else []:
            if isinstance(sig, dict):
                signer = sig.get("signer") or sig.get("signer_name") or sig.get("field") or "-"
                when = sig.get("signing_time") or sig.get("timestamp") or "-"
                valid = sig.get("valid")
                level = sig.get("level") or sig.get("pades_level") or ""
                line(f"      签名人：{signer}　时间：{when}　{'有效' if valid else '无效'}　{level}")
                if sig.get("case_id"):
                    line(f"      事件证书签发用于案件 {sig['case_id']}，签署意图 SHA-256：{sig.get('intent_sha256')}")
        if r.get("error"):
            line(f"      错误：{r['error']}")

    heading("六、如何核验本档案")
    line("manifest.json 列出档案内每个文件的 SHA-256，manifest.json.tsr 是对 manifest.json 的 RFC 3161 可信时间戳。"
         "使用 qianli dossier verify 档案.zip 离线核验全部内容；任何文件被修改、增加或删除都会导致核验失败。")
    line(f"根证书（pki/root.pem）SHA-256：{root_sha256}")
    return bytes(pdf.output())
