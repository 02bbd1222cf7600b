"""import-linter contract types of our own (registered in pyproject.toml ``contract_types``).

``standard_library_only``: the listed packages import nothing but the standard library and
themselves (and ``allowed_modules``). It is how the domain (``cases``) stays pure: a new
third-party import there fails ``make lint`` naming the importing module and line.
"""

from __future__ import annotations

import sys

from importlinter import Contract, ContractCheck, fields, output


class StandardLibraryOnlyContract(Contract):
    type_name = "standard_library_only"

    source_modules = fields.ListField(subfield=fields.ModuleField())
    allowed_modules = fields.ListField(subfield=fields.ModuleField(), required=False)

    def check(self, graph, verbose: bool) -> ContractCheck:
        sources = [m.name for m in self.source_modules]  # type: ignore[attr-defined]
        allowed = set(sources) | {m.name for m in (self.allowed_modules or [])}  # type: ignore[attr-defined]
        stdlib = set(sys.stdlib_module_names) | {"__future__"}
        broken = []
        for source in sources:
            for importer in sorted({source} | graph.find_descendants(source)):
                for imported in sorted(graph.find_modules_directly_imported_by(importer)):
                    top = imported.split(".")[0]
                    if top in stdlib or any(imported == a or imported.startswith(a + ".") for a in allowed):
                        continue
                    details = graph.get_import_details(importer=importer, imported=imported)
                    lines = [d["line_number"] for d in details] or ["?"]
                    broken.append({"importer": importer, "imported": imported, "lines": lines})
        return ContractCheck(kept=not broken, metadata={"broken": broken})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for item in check.metadata["broken"]:
            output.print_error(f"{item['importer']} imports {item['imported']} (line "
                               f"{', '.join(map(str, item['lines']))}): not the standard library")
        output.new_line()
