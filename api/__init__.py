"""The HTTP entrypoint: the Flask app (flask-smorest blueprints under /api/v1, the HR console under /hr,
the PKI's CRL/OCSP/TSA endpoints, health and metrics), authentication decorators and the one error
model (``{code, status, message, errors}``). HTTP only: every decision is a call into
``qianli.services``.

Layer: entrypoints (with ``qianli.cli``, ``jobs`` and ``miniprogram_contract``). May import every
package below it: services, the runtime, adapters (``identity``, ``signing``, ``qianli.storage``),
models, core and the domain. Nothing below imports it.
"""
