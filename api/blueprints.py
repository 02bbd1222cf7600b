"""Every blueprint the app serves. Add one line per module (module must expose ``blp``)."""

BLUEPRINT_MODULES = [
    "api.health",
    "api.notice",
    "api.sessions",
    "api.cases",
    "api.company",
    "api.calendar",
    "api.wechat",
    "api.sms",
    "api.roster",
    "api.attendance",
    "api.dossier",
    "api.hr_cases",
    "api.hr_users",
    "api.case_actions",
    "api.reminders",
    "api.faces",
    "api.identity_changes",
    "api.signing",
    "api.agreement",
    "api.absconding",
    "api.certificate",
    "api.offboarding",
    "api.alumni",
    "api.webhooks",
    "api.access",
    "api.analytics",
]

# Plain Flask blueprints outside the OpenAPI contract (binary PKI endpoints, HR console pages).
# Module exposes ``bp`` or ``register(app)``.
PLAIN_BLUEPRINT_MODULES: list[str] = ["api.dev", "api.console", "api.console_offboarding", "api.pki", "api.ops",
                                     "api.alumni_console"]
