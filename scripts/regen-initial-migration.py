"""Regenerate the initial Alembic migration from the models (pre-release only).

Until the first production release the schema has a single migration, rebuilt from the ORM
models with this script; after the release, migrations are incremental
(`alembic revision --autogenerate`). Usage: .venv/bin/python scripts/regen-initial-migration.py
"""

import re
import tempfile
from pathlib import Path

from alembic import command

from qianli.migrate import MIGRATIONS, alembic_config

VERSIONS = MIGRATIONS / "versions"
for old in VERSIONS.glob("*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as tmp:
    cfg = alembic_config(f"sqlite:///{Path(tmp) / 'empty.db'}")
    command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
path = next(VERSIONS.glob("0001_*.py"))
src = path.read_text()
src = re.sub(r"Create Date: .*\n", "", src)
src = src.replace("import qianli.db\n", "import qianli.db\nfrom qianli.migrate import EVIDENCE_APPEND_ONLY_SQL\n")
src = src.replace("    # ### end Alembic commands ###\n\n\ndef downgrade", (
    "    # ### end Alembic commands ###\n"
    "    if op.get_bind().dialect.name == \"postgresql\":\n"
    "        for stmt in EVIDENCE_APPEND_ONLY_SQL:\n"
    "            op.execute(stmt)\n\n\ndef downgrade"), 1)
path.write_text(src)
print(f"wrote {path}")
