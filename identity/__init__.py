"""Who the employee is, as adapters to the outside world: the WeChat API client (``wechat``), SMS
gateways (``sms``: Tencent Cloud, Aliyun, the development outbox) and one-time codes
(``sms_codes``), face encoding and matching (``faces``), liveness (``liveness``) and the signing
intent that binds both factors to one letter (``intent``). Each integration has a real client whose
base URL is a setting and a development stand-in that says loudly it is one.

Layer: adapters. May import the domain (``cases``) and third-party libraries; never ``signing``
(the two are independent), the models, the runtime, the services or any entrypoint. Built from
settings by ``qianli.runtime.Runtime``.
"""
