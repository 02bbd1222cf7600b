"""``qianli purge-face-photos``: delete raw reference photos past ``QIANLI_FACE_PHOTO_RETENTION_S``.

Enrolment purges expired photos too; run this from cron (or the scheduler) so that a photo is
never kept much longer than its deadline when nobody enrols.
"""

from __future__ import annotations

import json

import click

__all__ = ["purge_face_photos_command"]


@click.command("purge-face-photos", help="Delete raw reference face photos whose retention deadline has passed; "
                                          "prints {\"deleted\": N}.")
def purge_face_photos_command() -> None:
    from qianli.db import session_scope
    from qianli.runtime import get_runtime
    from qianli.services.faces import purge_expired_photos

    rt = get_runtime()
    with session_scope(rt.session_factory) as s:
        deleted = purge_expired_photos(s)
    click.echo(json.dumps({"deleted": deleted}))
