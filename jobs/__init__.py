"""The rq entrypoint: job functions the workers run (``reminders``: one delivery, the sweep, the HR
digests). Jobs take ids, open their own unit of work and call the service layer; the commands that
start workers and the scheduler are in ``qianli.cli.jobs``.

Layer: entrypoints (with ``api``, ``qianli.cli`` and ``miniprogram_contract``). May import the
services, the runtime and everything below them; nothing below imports it.
"""
