"""Write the settings table into README.md between the settings-table markers."""

import re
from pathlib import Path

from qianli.settings import settings_table

readme = Path(__file__).resolve().parent.parent / "README.md"
text = readme.read_text()
block = f"<!-- settings-table -->\n{settings_table()}\n<!-- /settings-table -->"
text = re.sub(r"<!-- settings-table -->(.*?<!-- /settings-table -->)?", lambda _m: block, text, count=1, flags=re.S)
readme.write_text(text)
print("README settings table updated")
