"""The domain: resignation cases as pure rules. The case state machine and its zh-CN state names
(``states``), notice periods (``notice``, Labor Contract Law art. 37) on the Chinese working-day
calendar (``calendar``), the hash-chained evidence log (``evidence``) and its vocabulary
(``evidence_kinds``: every kind with its dossier view and label), the reminder policy
(``reminders``), evidence anchoring (``anchor``), the one clock (``clock``, Beijing time) and the
domain errors every layer raises (``errors``).

Layer: domain, the lowest. Imports only the standard library, itself and ``lunar_python`` (lunar
months and solar terms for the statutory holidays); an import-linter contract of our own,
``standard_library_only``, fails on anything else. Every other package may import it.
"""
