"""``qianli outbox``: read the development SMS outbox (codes included) from the command line."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click

__all__ = ["outbox_command"]


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
