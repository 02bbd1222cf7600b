"""The service layer: small use-case functions. They take a Session and the Runtime (for settings
and adapters: Redis, the cipher, the store, the SMS and WeChat clients, the PKI, the timestamper),
raise ``cases.errors``, never commit (the caller's unit of work does) and orchestrate only: rules
live in ``cases``, PDFs and signatures in ``signing``, identity checks in ``identity``.

Layer: services. May import the runtime, adapters, models, core and the domain, and each other;
never an entrypoint (``api``, ``qianli.cli``, ``jobs``) or a web framework.
"""
