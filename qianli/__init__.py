"""The application around the domain, in layers (README, Layout; import-linter keeps them):

- ``qianli.cli`` — entrypoint: the ``qianli`` command line, the demo and the development seed;
- ``qianli.services`` — the use cases (they orchestrate; the rules are in ``cases``);
- ``qianli.runtime`` — the composition root: settings in, every adapter out, overridable in tests;
- adapters ``qianli.storage`` (documents, local or S3), ``qianli.crypto`` (field encryption),
  ``qianli.migrate`` (Alembic), ``qianli.observability`` (logs and metrics), beside ``identity`` and ``signing``;
- ``qianli.models`` — the ORM tables;
- core ``qianli.db`` (engine, sessions, on_commit) and ``qianli.settings`` (the one reader of the environment).

A module may import its own layer's siblings where the contract allows and any lower layer, never a
higher one; no module here imports ``api``.
"""
