"""Everything about signed PDFs: the resignation letter (``letter``), its fonts (``fonts``), the
internal PKI (``pki``: root, CA, per-signing certificates, CRL and OCSP), PAdES B-LTA signing and
the signature stamps (``pades``), the company seal in a PKCS#12 file or a PKCS#11 token (``seal``),
RFC 3161 timestamps (``tsa``), verification (``verify``) and the event-loop helper pyHanko needs
(``aio``).

Layer: adapters. May import the domain (``cases``) and third-party libraries; never ``identity``
(the two are independent), the models, the runtime, the services or any entrypoint. The PKI and the
timestamper reach services through ``qianli.runtime.Runtime``.
"""
