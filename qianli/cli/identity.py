"""``qianli outbox``: read the development SMS outbox (codes included) from the command line."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

__all__ = ["outbox_command", "faces_group"]


@click.command("outbox", help="Show the newest messages of the development SMS outbox (development only).")
@click.option("--phone", default=None, help="Only messages to this mainland mobile number.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def outbox_command(phone: str | None, limit: int, as_json: bool) -> None:
    from identity.sms import DevOutboxSmsGateway, normalize_cn_mobile
    from qianli.runtime import get_runtime

    rt = get_runtime()
    if rt.settings.env == "production" or rt.settings.sms_backend != "dev":
        raise click.ClickException("the SMS outbox exists only with QIANLI_SMS_BACKEND=dev outside production")
    gateway = DevOutboxSmsGateway(rt.redis)
    for msg in gateway.messages(phone=normalize_cn_mobile(phone) if phone else None, limit=limit):
        if as_json:
            click.echo(json.dumps(msg.as_dict(), ensure_ascii=False))
        else:
            at = datetime.fromtimestamp(msg.at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
            params = " ".join(f"{k}={v}" for k, v in msg.params.items())
            click.echo(f"{at}  {msg.phone}  {msg.template}  {params}")


@click.group("faces", help="Face match tools.")
def faces_group() -> None:
    pass


@faces_group.command("compare", help="Compare the single face in photo A with the one in photo B; prints one JSON object.")
@click.argument("a", type=click.Path(exists=True, dir_okay=False))
@click.argument("b", type=click.Path(exists=True, dir_okay=False))
@click.option("--threshold", type=float, default=None, help="Default: QIANLI_FACE_THRESHOLD.")
def faces_compare_command(a: str, b: str, threshold: float | None) -> None:
    from cases.errors import DomainError
    from identity.faces import compare, decide, encode_single_face
    from qianli.settings import get_settings

    s = get_settings()
    thr = s.face_threshold if threshold is None else threshold
    encs = []
    for path in (a, b):
        try:
            with open(path, "rb") as fh:
                encs.append(encode_single_face(fh.read(), max_pixels=s.face_max_pixels, max_side=s.face_detect_max_side))
        except DomainError as exc:
            faces = (exc.details or {}).get("faces")
            click.echo(json.dumps({"error": exc.code, "image": path, "faces": faces}), err=True)
            raise click.ClickException(f"{path}: {exc.code} ({'no face' if faces == 0 else f'{faces} faces' if faces else 'unreadable image'})") from None
    match, dist = compare(encs[0].encoding, encs[1].encoding, thr)
    retake = max(thr, s.face_retake_threshold)
    click.echo(json.dumps({"match": match, "decision": decide(dist, thr, retake), "distance": round(dist, 4),
                           "threshold": thr, "retake_threshold": retake, "faces_a": encs[0].faces,
                           "faces_b": encs[1].faces}))
