"""The one place that reads the environment.

Every setting is a field of :class:`Settings` with its environment variable, its default and a
docstring (``help``). Parsing is strict: an unparsable value, an unknown ``QIANLI_ENV`` or a
missing secret outside development stops the process with a message naming the variable.

``QIANLI_ENV`` has no default: a process started without it refuses to start (fail closed: an
unset variable must never mean "development", where ``dev-<openid>`` logins and the SMS outbox
exist). ``make run``, the scripts, the tests and CI set it explicitly.

In ``development`` (what ``make run`` sets) and ``test``, secrets that are not given are
generated once and kept in ``$QIANLI_VAR_DIR/dev-secrets.json``; in ``production`` they must come
from the environment. The README's settings table is generated from this module
(``qianli settings --markdown``), so it cannot drift.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = ["Settings", "SettingsError", "load_settings", "get_settings", "reset_settings_cache", "settings_table"]

ENVIRONMENTS = ("development", "test", "production")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the environment variable."""


def _s(env: str, default: Any, help: str, *, secret: bool = False, choices: tuple[str, ...] | None = None):
    return field(default=default, metadata={"env": env, "help": help, "secret": secret, "choices": choices})


@dataclass(frozen=True)
class Settings:
    # --- core -----------------------------------------------------------------------------
    env: str = _s("QIANLI_ENV", "", "Required, no default: development, test or production. The app refuses to start without it; production refuses default secrets and development backends.", choices=ENVIRONMENTS)
    var_dir: Path = _s("QIANLI_VAR_DIR", Path("var"), "Directory for local state: SQLite file, dev secrets, PKI, documents, outbox.")
    database_url: str = _s("DATABASE_URL", "", "SQLAlchemy URL. Default: SQLite file var/qianli.db. Production: postgresql+psycopg://...")
    sqlite_busy_timeout_s: float = _s("QIANLI_SQLITE_BUSY_TIMEOUT_S", 30.0, "SQLite only: how long a write transaction waits for another process's write lock (every write transaction takes it up front, BEGIN IMMEDIATE) before 'database is locked'; a unit of work that still meets the lock is re-run up to 3 times.")
    migration_database_url: str = _s("QIANLI_MIGRATION_DATABASE_URL", "", "PostgreSQL URL of the owner role that runs 'qianli db upgrade' (owns the tables, grants the app's role). Give it to the migration step only, never to web or rq workers. Empty: DATABASE_URL (development, SQLite).")
    redis_url: str = _s("REDIS_URL", "redis://127.0.0.1:6379/0", "Redis for RQ queues, SMS codes, rate limits, token caches.")
    public_base_url: str = _s("QIANLI_PUBLIC_BASE_URL", "http://127.0.0.1:8000", "External base URL; used in certificates (CRL/OCSP/AIA URLs) and links.")
    secret_key: str = _s("QIANLI_SECRET_KEY", "", "Signs access tokens and HR console cookies (>= 32 chars).", secret=True)
    data_keys: str = _s("QIANLI_DATA_KEYS", "", "AES-256-GCM keys for fields at rest: 'kid:base64key[,kid:base64key...]'; the first is used to encrypt, all to decrypt (rotation).", secret=True)
    lookup_key: str = _s("QIANLI_LOOKUP_KEY", "", "HMAC key for searchable hashes of phone numbers and IDs (base64, 32 bytes).", secret=True)
    max_request_bytes: int = _s("QIANLI_MAX_REQUEST_BYTES", 12 * 1024 * 1024, "Largest accepted request body in bytes (uploads included).")
    max_json_depth: int = _s("QIANLI_MAX_JSON_DEPTH", 32, "Deepest nesting of arrays/objects accepted in a JSON body (deeper: 400 json_too_deep).")
    max_url_bytes: int = _s("QIANLI_MAX_URL_BYTES", 4096, "Longest request target (path and query string) in bytes (longer: 414 uri_too_long). Keep it below gunicorn's request-line limit (8190).")
    max_header_bytes: int = _s("QIANLI_MAX_HEADER_BYTES", 8192, "Largest single request header field (name and value) in bytes (larger: 431 request_header_too_large). Keep it below gunicorn's limit_request_field_size (32768 in config/gunicorn.conf.py).")
    access_token_ttl_s: int = _s("QIANLI_ACCESS_TOKEN_TTL_S", 900, "Lifetime of employee and HR access tokens, seconds.")
    refresh_token_ttl_s: int = _s("QIANLI_REFRESH_TOKEN_TTL_S", 30 * 86400, "Lifetime of employee refresh tokens, seconds.")
    hr_session_ttl_s: int = _s("QIANLI_HR_SESSION_TTL_S", 8 * 3600, "Lifetime of an HR login (server-side session, token and console cookie), seconds.")
    hr_login_max_failures: int = _s("QIANLI_HR_LOGIN_MAX_FAILURES", 5, "Failed HR logins for one account (company code + username) within QIANLI_HR_LOGIN_WINDOW_S that lock it (429 login_locked, HR alert).")
    hr_login_max_failures_per_ip: int = _s("QIANLI_HR_LOGIN_MAX_FAILURES_PER_IP", 20, "Failed HR logins from one client address within QIANLI_HR_LOGIN_WINDOW_S before 429 login_throttled.")
    hr_login_window_s: int = _s("QIANLI_HR_LOGIN_WINDOW_S", 900, "Window in which failed HR logins are counted, seconds.")
    hr_login_lockout_s: int = _s("QIANLI_HR_LOGIN_LOCKOUT_S", 900, "How long a locked HR account stays locked, seconds (a password reset lifts it).")
    trusted_proxies: int = _s("QIANLI_TRUSTED_PROXIES", 0, "Number of reverse proxies in front of the app (werkzeug ProxyFix): the client address and scheme are taken from that many X-Forwarded-For / X-Forwarded-Proto hops. 0: the socket address (no proxy). Never more than the proxies you run: a client can forge extra hops.")
    log_level: str = _s("QIANLI_LOG_LEVEL", "INFO", "Python logging level.", choices=("DEBUG", "INFO", "WARNING", "ERROR"))

    # --- observability -------------------------------------------------------------------
    log_format: str = _s("QIANLI_LOG_FORMAT", "json", "Log lines on stderr: 'json' (one object per line, with request_id) or 'text'.", choices=("json", "text"))
    trust_request_id: bool = _s("QIANLI_TRUST_REQUEST_ID", False, "Adopt the incoming X-Request-ID header (1-128 safe characters) as the request id. Set it only behind a proxy that sets or strips that header; otherwise every request gets a fresh id.")
    metrics_token: str = _s("QIANLI_METRICS_TOKEN", "", "Bearer token required to read /metrics. Empty: /metrics answers only direct loopback clients (no X-Forwarded-For/Forwarded header).", secret=True)
    prometheus_multiproc_dir: str = _s("PROMETHEUS_MULTIPROC_DIR", "", "prometheus-client's multiprocess directory: set it (an empty directory, cleaned at each start) when gunicorn runs several workers, so /metrics adds up every process. config/gunicorn.conf.py and `make run` use var/prometheus.")

    # --- notice rules --------------------------------------------------------------------
    letter_due_working_days: int = _s("QIANLI_LETTER_DUE_WORKING_DAYS", 3, "Working days after notice arrival by which the signed letter is due (companies may override).")
    holidays_extend_notice: bool = _s("QIANLI_HOLIDAYS_EXTEND_NOTICE", False, "Default for companies: whether statutory holidays extend the 30/3-day notice period (disputed in law). Reading implemented: only the statutory days of the 放假办法 extend it, not the whole holiday block (see \"Working days and holidays\").")

    # --- identity: WeChat -----------------------------------------------------------------
    wechat_backend: str = _s("QIANLI_WECHAT_BACKEND", "dev", "'dev' (accepts codes 'dev-<openid>'; development only) or 'api' (the real WeChat API).", choices=("dev", "api"))
    wechat_api_base_url: str = _s("QIANLI_WECHAT_API_BASE_URL", "https://api.weixin.qq.com", "Base URL of the WeChat server API.")
    wechat_appid: str = _s("QIANLI_WECHAT_APPID", "", "Mini-program AppID.")
    wechat_appsecret: str = _s("QIANLI_WECHAT_APPSECRET", "", "Mini-program AppSecret (required when the backend is 'api').", secret=True)
    wechat_timeout_s: float = _s("QIANLI_WECHAT_TIMEOUT_S", 5.0, "HTTP timeout for WeChat API calls, seconds.")

    # --- identity: SMS -------------------------------------------------------------------
    sms_backend: str = _s("QIANLI_SMS_BACKEND", "dev", "'dev' (writes to an outbox; development only), 'tencent' or 'aliyun'.", choices=("dev", "tencent", "aliyun"))
    sms_code_ttl_s: int = _s("QIANLI_SMS_CODE_TTL_S", 300, "Validity of an SMS code, seconds.")
    sms_resend_cooldown_s: int = _s("QIANLI_SMS_RESEND_COOLDOWN_S", 60, "Minimum seconds between two codes to one phone for the same purpose.")
    sms_max_attempts: int = _s("QIANLI_SMS_MAX_ATTEMPTS", 5, "Wrong entries that kill a code.")
    sms_per_phone_hour: int = _s("QIANLI_SMS_PER_PHONE_HOUR", 5, "Codes per phone per hour, for each purpose (bind, sign) separately.")
    sms_per_phone_day: int = _s("QIANLI_SMS_PER_PHONE_DAY", 10, "Codes per phone per day, for each purpose separately.")
    sms_per_ip_hour: int = _s("QIANLI_SMS_PER_IP_HOUR", 20, "Code requests per client IP per hour, for each purpose separately (the IP after QIANLI_TRUSTED_PROXIES).")
    sms_per_openid_hour: int = _s("QIANLI_SMS_PER_OPENID_HOUR", 5, "Code requests per WeChat user (openid) per hour, for each purpose separately.")
    sms_per_openid_day: int = _s("QIANLI_SMS_PER_OPENID_DAY", 10, "Code requests per WeChat user (openid) per day, for each purpose separately.")
    sms_per_employee_hour: int = _s("QIANLI_SMS_PER_EMPLOYEE_HOUR", 5, "Codes sent for one employee per hour, for each purpose separately.")
    sms_per_employee_day: int = _s("QIANLI_SMS_PER_EMPLOYEE_DAY", 10, "Codes sent for one employee per day, for each purpose separately.")
    bind_failures_per_openid_hour: int = _s("QIANLI_BIND_FAILURES_PER_OPENID_HOUR", 10, "Failed bindEmployee attempts per WeChat user per hour before 429 bind_attempts_exhausted.")
    bind_failures_per_ip_hour: int = _s("QIANLI_BIND_FAILURES_PER_IP_HOUR", 50, "Failed bindEmployee attempts per client IP per hour before 429 bind_attempts_exhausted.")
    bind_answer_floor_s: float = _s("QIANLI_BIND_ANSWER_FLOOR_S", 0.4, "Failed bindEmployee answers and every sendSmsCode 'bind' answer take at least this long, so timing does not tell a roster match from a mismatch.")
    sms_tencent_endpoint: str = _s("QIANLI_SMS_TENCENT_ENDPOINT", "sms.tencentcloudapi.com", "Tencent Cloud SMS endpoint host (HTTPS), or http://host:port of a local emulation (tests, benchmarks).")
    sms_tencent_region: str = _s("QIANLI_SMS_TENCENT_REGION", "ap-guangzhou", "Tencent Cloud region.")
    sms_tencent_secret_id: str = _s("QIANLI_SMS_TENCENT_SECRET_ID", "", "Tencent Cloud SecretId.", secret=True)
    sms_tencent_secret_key: str = _s("QIANLI_SMS_TENCENT_SECRET_KEY", "", "Tencent Cloud SecretKey.", secret=True)
    sms_tencent_sdk_app_id: str = _s("QIANLI_SMS_TENCENT_SDK_APP_ID", "", "Tencent SMS SdkAppId.")
    sms_sign_name: str = _s("QIANLI_SMS_SIGN_NAME", "", "Approved SMS signature (签名) for either provider.")
    sms_template_code: str = _s("QIANLI_SMS_TEMPLATE_CODE", "", "Provider template id for verification codes.")
    sms_template_reminder: str = _s("QIANLI_SMS_TEMPLATE_REMINDER", "", "Provider template id for letter reminders.")
    sms_template_task: str = _s("QIANLI_SMS_TEMPLATE_TASK", "", "Provider template id for offboarding task reminders and overdue escalations to task owners and HR (params: name, employee, task, due).")
    sms_aliyun_endpoint: str = _s("QIANLI_SMS_ALIYUN_ENDPOINT", "dysmsapi.aliyuncs.com", "Aliyun SMS endpoint host.")
    sms_aliyun_access_key_id: str = _s("QIANLI_SMS_ALIYUN_ACCESS_KEY_ID", "", "Aliyun AccessKey id.", secret=True)
    sms_aliyun_access_key_secret: str = _s("QIANLI_SMS_ALIYUN_ACCESS_KEY_SECRET", "", "Aliyun AccessKey secret.", secret=True)

    # --- identity: face ------------------------------------------------------------------
    face_threshold: float = _s("QIANLI_FACE_THRESHOLD", 0.5, "Largest face distance accepted as the same person (published figures and measured margins; see README 'Face match').")
    face_retake_threshold: float = _s("QIANLI_FACE_RETAKE_THRESHOLD", 0.6, "Distances above QIANLI_FACE_THRESHOLD up to this one are neither accepted nor counted as a mismatch: 422 face_retake asks for a new burst (dlib's published operating point 0.6; equal to QIANLI_FACE_THRESHOLD: no retake band). Above it: 403 face_mismatch.")
    face_max_pixels: int = _s("QIANLI_FACE_MAX_PIXELS", 40_000_000, "Images with more pixels are refused before decoding (decompression bombs).")
    face_detect_max_side: int = _s("QIANLI_FACE_DETECT_MAX_SIDE", 640, "Longest side an image is downscaled to before face detection.")
    face_lock_after_failures: int = _s("QIANLI_FACE_LOCK_AFTER_FAILURES", 5, "Consecutive failed face checks that lock face verification.")
    face_photo_retention_s: int = _s("QIANLI_FACE_PHOTO_RETENTION_S", 0, "How long a raw reference photo may be kept after enrolment (0: not kept).")
    liveness_challenge_ttl_s: int = _s("QIANLI_LIVENESS_CHALLENGE_TTL_S", 120, "Validity of a liveness challenge, seconds.")
    liveness_provider: str = _s("QIANLI_LIVENESS_PROVIDER", "local", "'local' (landmark challenge-response on this server) or a certified service: 'wechat' / 'tencent_faceid' (not available offline: answers 503).", choices=("local", "wechat", "tencent_faceid"))
    liveness_min_frames: int = _s("QIANLI_LIVENESS_MIN_FRAMES", 3, "Fewest frames in a liveness burst (a neutral frame and one per action).")
    liveness_max_frames: int = _s("QIANLI_LIVENESS_MAX_FRAMES", 8, "Most frames in a liveness burst.")
    liveness_frame_max_pixels: int = _s("QIANLI_LIVENESS_FRAME_MAX_PIXELS", 4_000_000, "Largest liveness/selfie frame in pixels (width x height), read from each frame's header before any frame is decoded; more: 413 image_too_large.")
    liveness_challenges_per_hour: int = _s("QIANLI_LIVENESS_CHALLENGES_PER_HOUR", 30, "Liveness challenges one employee may start per hour; more: 429 liveness_challenge_rate_limited.")
    face_verifications_per_hour: int = _s("QIANLI_FACE_VERIFICATIONS_PER_HOUR", 20, "Face verifications (liveness bursts) one employee may submit per hour, whatever their outcome; more: 429 face_verification_rate_limited.")
    liveness_max_frame_bytes: int = _s("QIANLI_LIVENESS_MAX_FRAME_BYTES", 2 * 1024 * 1024, "Largest single frame of a liveness burst, bytes.")
    identity_cooling_days: int = _s("QIANLI_IDENTITY_COOLING_DAYS", 7, "Days a changed phone number, or a WeChat binding made after an HR unbind, waits before it can be used for signing, unless the employee confirms it from the WeChat that was bound before (1-90).")
    faceid_backend: str = _s("QIANLI_FACEID_BACKEND", "off", "Certified real-name face enrolment: 'off' or 'tencent' (Tencent Cloud FaceID 人脸核身 DetectAuth + GetDetectInfoEnhanced).", choices=("off", "tencent"))
    faceid_tencent_endpoint: str = _s("QIANLI_FACEID_TENCENT_ENDPOINT", "faceid.tencentcloudapi.com", "Tencent Cloud FaceID endpoint host (host:port; http:// prefix allowed for a local emulation).")
    faceid_tencent_region: str = _s("QIANLI_FACEID_TENCENT_REGION", "ap-guangzhou", "Tencent Cloud FaceID region.")
    faceid_tencent_secret_id: str = _s("QIANLI_FACEID_TENCENT_SECRET_ID", "", "Tencent Cloud SecretId for FaceID.", secret=True)
    faceid_tencent_secret_key: str = _s("QIANLI_FACEID_TENCENT_SECRET_KEY", "", "Tencent Cloud SecretKey for FaceID.", secret=True)
    faceid_tencent_rule_id: str = _s("QIANLI_FACEID_TENCENT_RULE_ID", "", "FaceID RuleId (业务流程ID) from the Tencent Cloud console.")
    signing_intent_window_s: int = _s("QIANLI_SIGNING_INTENT_WINDOW_S", 300, "SMS and face checks must both pass within this many seconds to earn a signing intent.")
    signing_intent_ttl_s: int = _s("QIANLI_SIGNING_INTENT_TTL_S", 600, "Lifetime of a signing intent, seconds.")

    # --- signing -------------------------------------------------------------------------
    tsa_url: str = _s("QIANLI_TSA_URL", "", "RFC 3161 timestamp authority URL. Empty: the app's own development TSA (development/test only).")
    tsa_trust_roots: str = _s("QIANLI_TSA_TRUST_ROOTS", "", "PEM file with the root certificate(s) of the TSA at QIANLI_TSA_URL (required with it). Trusted for timestamps only; the TSA chain's CRLs/OCSP are fetched from the URLs in its certificates when signing, and the validated chain with that data is reused for later letters for at most 10 minutes, never past a CRL's or OCSP response's nextUpdate or a certificate's expiry.")
    seal_backend: str = _s("QIANLI_SEAL_BACKEND", "pkcs12", "Company seal key store: 'pkcs11' (HSM/SoftHSM2) or 'pkcs12' (file).", choices=("pkcs11", "pkcs12"))
    pkcs11_module: str = _s("QIANLI_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so", "PKCS#11 module path.")
    pkcs11_token_label: str = _s("QIANLI_PKCS11_TOKEN_LABEL", "qianli-seal", "PKCS#11 token label holding the seal key.")
    pkcs11_user_pin: str = _s("QIANLI_PKCS11_USER_PIN", "", "PKCS#11 user PIN.", secret=True)
    pkcs12_passphrase: str = _s("QIANLI_PKCS12_PASSPHRASE", "", "Passphrase of PKCS#12 files under var/pki.", secret=True)
    event_cert_validity_s: int = _s("QIANLI_EVENT_CERT_VALIDITY_S", 600, "Validity of a per-signing event certificate, seconds.")
    tsa_timeout_s: int = _s("QIANLI_TSA_TIMEOUT_S", 10, "Timeout of one request to the TSA, seconds.")
    signature_png_max_bytes: int = _s("QIANLI_SIGNATURE_PNG_MAX_BYTES", 512 * 1024, "Largest handwritten-signature PNG accepted by signLetter, bytes.")
    signing_dev_delay_s: float = _s("QIANLI_SIGNING_DEV_DELAY_S", 0.0, "Development/test only: pause signLetter after the PDF is signed and stored, before its transaction commits (to exercise a crash mid-signing).")
    verify_max_bytes: int = _s("QIANLI_VERIFY_MAX_BYTES", 20 * 1024 * 1024, "Largest PDF accepted by verifyDocument, bytes.")
    verify_max_signatures: int = _s("QIANLI_VERIFY_MAX_SIGNATURES", 16, "Most signatures and document timestamps in one PDF checked by verifyDocument; more: 422 pdf_too_many_signatures.")
    storage_backend: str = _s("QIANLI_STORAGE_BACKEND", "local", "Document storage: 'local' (var/documents) or 's3'.", choices=("local", "s3"))
    s3_endpoint_url: str = _s("QIANLI_S3_ENDPOINT_URL", "", "S3-compatible endpoint URL.")
    s3_bucket: str = _s("QIANLI_S3_BUCKET", "", "S3 bucket for documents.")
    s3_access_key_id: str = _s("QIANLI_S3_ACCESS_KEY_ID", "", "S3 access key id.", secret=True)
    s3_secret_access_key: str = _s("QIANLI_S3_SECRET_ACCESS_KEY", "", "S3 secret access key.", secret=True)

    # --- evidence anchors ----------------------------------------------------------------
    anchor_interval_s: int = _s("QIANLI_ANCHOR_INTERVAL_S", 3600, "How often the scheduler timestamps a Merkle root over the evidence chains that grew (RFC 3161, the configured TSA), seconds.")

    # --- reminders -----------------------------------------------------------------------
    reminder_interval_s: int = _s("QIANLI_REMINDER_INTERVAL_S", 86400, "Time between two reminders of one case, seconds.")
    quiet_hours: str = _s("QIANLI_QUIET_HOURS", "21:00-08:00", "Asia/Shanghai hours in which no reminder is sent ('HH:MM-HH:MM', or 'off').")
    sweep_interval_s: int = _s("QIANLI_SWEEP_INTERVAL_S", 60, "How often the scheduler sweeps for due reminders, seconds.")
    wechat_subscribe_template_id: str = _s("QIANLI_WECHAT_SUBSCRIBE_TEMPLATE_ID", "", "Subscribe-message template id for reminders.")
    wechat_subscribe_page: str = _s("QIANLI_WECHAT_SUBSCRIBE_PAGE", "pages/resign/letter", "Mini-program page opened from a reminder.")
    wechat_miniprogram_state: str = _s("QIANLI_WECHAT_MINIPROGRAM_STATE", "formal", "developer, trial or formal.", choices=("developer", "trial", "formal"))
    reminder_send_lease_s: int = _s("QIANLI_REMINDER_SEND_LEASE_S", 300, "A reminder send claimed longer ago than this (its worker died) is sent again by the sweep; jobs time out 30 s before it.")
    reminder_retry_intervals: str = _s("QIANLI_REMINDER_RETRY_INTERVALS", "30,120,600", "Seconds between retries of a reminder after a provider error (comma-separated; their count is the number of retries).")
    reminder_batch_size: int = _s("QIANLI_REMINDER_BATCH_SIZE", 100, "Reminder deliveries per rq job (1..1000): a job claims its batch in one transaction, sends concurrently, records in one transaction. 1: one job per delivery.")
    reminder_send_concurrency: int = _s("QIANLI_REMINDER_SEND_CONCURRENCY", 100, "Provider calls (SMS, WeChat) one rq worker makes at once within a batch (1..256), over as many kept-alive connections; at least the batch size sends a batch in one round trip. With providers answering in ~100 ms, each worker delivers up to this many x 10 per second (CPU permitting).")
    reminder_dev_send_delay_s: float = _s("QIANLI_REMINDER_DEV_SEND_DELAY_S", 0.0, "Development/test only: pause before each reminder send (to exercise a worker crash mid-send).")

    # --- offboarding tasks ----------------------------------------------------------------
    task_reminder_hours: str = _s("QIANLI_TASK_REMINDER_HOURS", "09:00-18:00", "Asia/Shanghai hours of a working day in which task owners are reminded ('HH:MM-HH:MM', or 'off' for any hour); no reminder on rest days of the company calendar.")
    task_reminder_lead_days: int = _s("QIANLI_TASK_REMINDER_LEAD_DAYS", 2, "Daily reminders of an open task start this many working days before its due date (the owner is also told once the day the task is created).")

    # --- chat notices --------------------------------------------------------------------
    chat_notice_window_days: int = _s("QIANLI_CHAT_NOTICE_WINDOW_DAYS", 30, "A chat notice recorded with a sent_at older than this many days needs a screenshot and a reason (1-3650).")

    # --- leaving without notice ----------------------------------------------------------
    return_notice_deadline_days: int = _s("QIANLI_RETURN_NOTICE_DEADLINE_DAYS", 3, "Chinese working days after the return-to-work notice is served (that day not counted) by which the employee must return or explain (1-30; companies may override).")
    # --- attendance and early warning --------------------------------------------------
    attendance_max_bytes: int = _s("QIANLI_ATTENDANCE_MAX_BYTES", 10 * 1024 * 1024, "Largest attendance file (CSV or XLSX, clock-ins or leave) accepted for import, bytes.")
    attendance_max_rows: int = _s("QIANLI_ATTENDANCE_MAX_ROWS", 100000, "Most data rows in one attendance file (a month of raw punches of ~1,000 employees).")
    attrition_run_hour: int = _s("QIANLI_ATTRITION_RUN_HOUR", 7, "Beijing hour (0-23) from which the scheduler runs each company's daily early warning (WeCom check-in pull, risk list, notifications of new reds), once a day.")
    wecom_checkin_days: int = _s("QIANLI_WECOM_CHECKIN_DAYS", 3, "Days of WeCom check-ins (ending yesterday) the daily job pulls again, so late or corrected records arrive (1-30).")


    # --- alumni (issue 17) ----------------------------------------------------------------
    termination_records_retention_days: int = _s("QIANLI_TERMINATION_RECORDS_RETENTION_DAYS", 730, "Days after a case closes that its termination documents (case, letters, certificate, evidence chain) are kept at least (law: 2 years; >= 730).")
    alumni_consent_grace_days: int = _s("QIANLI_ALUMNI_CONSENT_GRACE_DAYS", 30, "Days after close in which a former employee who did not join the alumni pool may still consent; then the retention job deletes their personal data beyond the termination documents (0-365).")
    alumni_quiet_hours: str = _s("QIANLI_ALUMNI_QUIET_HOURS", "21:00-09:00", "Asia/Shanghai hours in which no alumni message is sent ('HH:MM-HH:MM', or 'off'); a message due inside them waits for their end.")
    alumni_send_rate_per_minute: int = _s("QIANLI_ALUMNI_SEND_RATE_PER_MINUTE", 60, "Most alumni messages sent per minute per company (1-6000); the rest wait for the next minute.")
    alumni_frequency_cap: int = _s("QIANLI_ALUMNI_FREQUENCY_CAP", 2, "Default per-person cap: at most this many alumni messages in QIANLI_ALUMNI_FREQUENCY_WINDOW_DAYS (a campaign may set a stricter one) (1-100).")
    alumni_frequency_window_days: int = _s("QIANLI_ALUMNI_FREQUENCY_WINDOW_DAYS", 30, "Window of the per-person frequency cap, days (1-365).")
    alumni_festival_greetings: bool = _s("QIANLI_ALUMNI_FESTIVAL_GREETINGS", True, "Send a greeting to the alumni who consented to greetings on Spring Festival and Mid-Autumn (dates from the lunar calendar); the daily alumni job creates the campaign.")
    sms_template_alumni: str = _s("QIANLI_SMS_TEMPLATE_ALUMNI", "", "Provider template id for alumni messages (params: text, unsubscribe link).")
    sms_reply_token: str = _s("QIANLI_SMS_REPLY_TOKEN", "", "Shared secret the SMS provider's reply callback sends (X-QianLi-Token header) to receiveSmsReply ('TD'/'退订' withdraws alumni consent). Empty: the endpoint answers 403 sms_reply_disabled (>= 16 chars when set).", secret=True)
    # --- WeCom (企业微信) ------------------------------------------------------------------
    wecom_backend: str = _s("QIANLI_WECOM_BACKEND", "off", "WeCom connector: 'off' (none), 'dev' (logs calls and keeps them in Redis; development/test only) or 'api' (the real server API at QIANLI_WECOM_API_BASE_URL).", choices=("off", "dev", "api"))
    wecom_api_base_url: str = _s("QIANLI_WECOM_API_BASE_URL", "https://qyapi.weixin.qq.com", "Base URL of the WeCom server API.")
    wecom_corp_id: str = _s("QIANLI_WECOM_CORP_ID", "", "WeCom corp id (企业ID); required with QIANLI_WECOM_BACKEND=api.")
    wecom_secret: str = _s("QIANLI_WECOM_SECRET", "", "Secret of the WeCom app (needs contacts write permission to disable members, and check-in read for attendance); required with QIANLI_WECOM_BACKEND=api.", secret=True)
    wecom_agent_id: int = _s("QIANLI_WECOM_AGENT_ID", 0, "AgentId of the WeCom app that sends task messages; required (> 0) with QIANLI_WECOM_BACKEND=api.")
    wecom_timeout_s: float = _s("QIANLI_WECOM_TIMEOUT_S", 5.0, "HTTP timeout of one WeCom API call, seconds.")

    # --- outbound webhooks ------------------------------------------------------------------
    webhook_retry_schedule: str = _s("QIANLI_WEBHOOK_RETRY_SCHEDULE", "5s,5m,30m,2h,5h,10h,10h", "Delays before each retry of a failed webhook delivery (comma-separated, units s/m/h/d, or 'none'; their count is the number of retries; Standard Webhooks' recommendation by default). After the last one the delivery is failed and HR alerted.")
    webhook_timeout_s: float = _s("QIANLI_WEBHOOK_TIMEOUT_S", 10.0, "Timeout of one webhook delivery attempt (connect and read), seconds; longer counts as a failed attempt.")
    webhook_allow_private: bool = _s("QIANLI_WEBHOOK_ALLOW_PRIVATE", False, "Production: allow webhook endpoints whose host resolves to a loopback, private, link-local or reserved address (SSRF guard). Development and test always allow loopback.")
    webhook_secret_grace_s: int = _s("QIANLI_WEBHOOK_SECRET_GRACE_S", 86400, "After a secret rotation, deliveries are signed with the new and the previous secret for this long, seconds, so receivers can switch without losing messages.")
    webhook_disable_after_s: int = _s("QIANLI_WEBHOOK_DISABLE_AFTER_S", 432000, "An endpoint whose every attempt has failed for this long is disabled (with an audit entry and one HR alert) when a delivery to it fails for good after the whole retry schedule, seconds; 432000 (5 days, as Svix does); 0 never disables. HR re-enables it with updateWebhookEndpoint.")
    webhook_lease_s: int = _s("QIANLI_WEBHOOK_LEASE_S", 120, "A delivery attempt claimed longer ago than this (its worker died) is re-queued by the sweep, seconds (more than the timeout).")
    revocation_confirm_deadline_s: int = _s("QIANLI_REVOCATION_CONFIRM_DEADLINE_S", 4 * 3600, "A system that has not confirmed an access revocation this long after it was sent raises an HR alert (权限验证), seconds.")

    # --- roster import -------------------------------------------------------------------
    roster_max_bytes: int = _s("QIANLI_ROSTER_MAX_BYTES", 5 * 1024 * 1024, "Largest roster file (CSV or XLSX) accepted for import, bytes.")
    roster_max_rows: int = _s("QIANLI_ROSTER_MAX_ROWS", 20000, "Most data rows in one roster file.")

    # --- derived helpers -----------------------------------------------------------------
    @property
    def is_development(self) -> bool:
        return self.env == "development"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def allows_dev_backends(self) -> bool:
        """Development backends (WeChat, SMS outbox, own TSA) are refused in production."""
        return self.env in ("development", "test")

    def data_key_ring(self) -> list[tuple[str, bytes]]:
        """Parsed ``QIANLI_DATA_KEYS``: [(kid, 32-byte key), ...], encryption key first."""
        ring: list[tuple[str, bytes]] = []
        for item in self.data_keys.split(","):
            kid, _, b64 = item.strip().partition(":")
            try:
                key = base64.b64decode(b64, validate=True)
            except ValueError as exc:
                raise SettingsError(f"QIANLI_DATA_KEYS: key {kid!r} is not base64") from exc
            if not kid or len(key) != 32:
                raise SettingsError(f"QIANLI_DATA_KEYS: each entry must be 'kid:<base64 of 32 bytes>' (got {kid!r})")
            ring.append((kid, key))
        return ring

    def reminder_retry_schedule(self) -> tuple[int, ...]:
        """Parsed ``QIANLI_REMINDER_RETRY_INTERVALS``: seconds before each retry (empty: no retries)."""
        raw = self.reminder_retry_intervals.strip()
        if not raw:
            return ()
        out: list[int] = []
        for item in raw.split(","):
            try:
                seconds = int(item.strip())
            except ValueError:
                raise SettingsError(f"QIANLI_REMINDER_RETRY_INTERVALS={self.reminder_retry_intervals!r}: "
                                    f"{item.strip()!r} is not a whole number of seconds") from None
            if seconds < 0:
                raise SettingsError(f"QIANLI_REMINDER_RETRY_INTERVALS={self.reminder_retry_intervals!r}: "
                                    "intervals cannot be negative")
            out.append(seconds)
        return tuple(out)

    def webhook_retry_delays(self) -> tuple[int, ...]:
        """Parsed ``QIANLI_WEBHOOK_RETRY_SCHEDULE``: seconds before each retry (empty: no retries)."""
        raw = self.webhook_retry_schedule.strip()
        if raw.lower() in ("", "none"):
            return ()
        units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
        out: list[int] = []
        for item in raw.split(","):
            token = item.strip().lower()
            number, unit = (token[:-1], token[-1]) if token[-1:] in units else (token, "s")
            if not number.isdigit():
                raise SettingsError(f"QIANLI_WEBHOOK_RETRY_SCHEDULE={self.webhook_retry_schedule!r}: {item.strip()!r} "
                                    "is not a delay such as 5s, 30m, 2h or 1d")
            out.append(int(number) * units[unit])
        if len(out) > 20 or sum(out) > 7 * 86400:
            raise SettingsError(f"QIANLI_WEBHOOK_RETRY_SCHEDULE={self.webhook_retry_schedule!r}: at most 20 retries "
                                "within 7 days")
        return tuple(out)

    def lookup_key_bytes(self) -> bytes:
        return base64.b64decode(self.lookup_key)


def _parse(name: str, raw: str, kind: Any) -> Any:
    try:
        if kind is bool or kind == "bool":
            low = raw.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if kind is int or kind == "int":
            return int(raw.strip())
        if kind is float or kind == "float":
            return float(raw.strip())
        if kind is Path or kind == "Path":
            return Path(raw)
        return raw
    except ValueError as exc:
        raise SettingsError(f"{name}={raw!r}: {exc}") from exc


def _dev_secrets(var_dir: Path) -> dict[str, str]:
    """Secrets generated once per checkout for development and test; never used in production."""
    path = var_dir / "dev-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    var_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "QIANLI_SECRET_KEY": secrets.token_urlsafe(48),
        "QIANLI_DATA_KEYS": "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "QIANLI_LOOKUP_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
        "QIANLI_PKCS11_USER_PIN": str(secrets.randbelow(10**8)).zfill(8),
        "QIANLI_PKCS12_PASSPHRASE": secrets.token_urlsafe(24),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2))
    os.chmod(tmp, 0o600)
    try:
        os.link(tmp, path)  # atomic create: a concurrent process may have won; then use theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return json.loads(path.read_text())


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build :class:`Settings` from ``environ`` (default ``os.environ``), strictly."""
    environ = dict(os.environ if environ is None else environ)
    values: dict[str, Any] = {}
    fields = dataclasses.fields(Settings)
    env_name = environ.get("QIANLI_ENV", "")
    if not env_name:
        raise SettingsError(f"QIANLI_ENV is not set: set it explicitly to one of {', '.join(ENVIRONMENTS)} "
                            "(nothing defaults to development)")
    if env_name not in ENVIRONMENTS:
        raise SettingsError(f"QIANLI_ENV={env_name!r}: must be one of {', '.join(ENVIRONMENTS)}")
    var_dir = Path(environ.get("QIANLI_VAR_DIR", "var")).absolute()
    if env_name != "production":
        for k, v in _dev_secrets(var_dir).items():
            environ.setdefault(k, v)
    for f in fields:
        var = f.metadata["env"]
        if var in environ and environ[var] != "":
            val = _parse(var, environ[var], f.type)
            choices = f.metadata.get("choices")
            if choices and val not in choices:
                raise SettingsError(f"{var}={val!r}: must be one of {', '.join(choices)}")
            values[f.name] = val
    values["var_dir"] = var_dir
    if not values.get("database_url"):
        values["database_url"] = f"sqlite:///{var_dir / 'qianli.db'}"
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    if len(s.secret_key) < 32:
        raise SettingsError("QIANLI_SECRET_KEY must be set (at least 32 characters)")
    if not s.data_keys:
        raise SettingsError("QIANLI_DATA_KEYS must be set")
    s.data_key_ring()
    try:
        if len(s.lookup_key_bytes()) < 32:
            raise ValueError
    except ValueError as exc:
        raise SettingsError("QIANLI_LOOKUP_KEY must be base64 of at least 32 bytes") from exc
    for var, value, low, high in (("QIANLI_MAX_JSON_DEPTH", s.max_json_depth, 2, 200),
                                  ("QIANLI_MAX_URL_BYTES", s.max_url_bytes, 256, 8000),
                                  ("QIANLI_MAX_HEADER_BYTES", s.max_header_bytes, 1024, 32 * 1024),
                                  ("QIANLI_ATTENDANCE_MAX_BYTES", s.attendance_max_bytes, 1024, 200 * 1024 * 1024),
                                  ("QIANLI_ATTENDANCE_MAX_ROWS", s.attendance_max_rows, 1, 2_000_000),
                                  ("QIANLI_ATTRITION_RUN_HOUR", s.attrition_run_hour, 0, 23),
                                  ("QIANLI_WECOM_CHECKIN_DAYS", s.wecom_checkin_days, 1, 30)):
        if not low <= value <= high:
            raise SettingsError(f"{var}={value}: must be between {low} and {high}")
    s.reminder_retry_schedule()
    if not 0.2 <= s.face_threshold <= s.face_retake_threshold <= 0.8:
        raise SettingsError(f"QIANLI_FACE_THRESHOLD={s.face_threshold}, QIANLI_FACE_RETAKE_THRESHOLD="
                            f"{s.face_retake_threshold}: need 0.2 <= threshold <= retake threshold <= 0.8")
    for var, value, low, high in (("QIANLI_REMINDER_BATCH_SIZE", s.reminder_batch_size, 1, 1000),
                                  ("QIANLI_REMINDER_SEND_CONCURRENCY", s.reminder_send_concurrency, 1, 256)):
        if not low <= value <= high:
            raise SettingsError(f"{var}={value}: must be between {low} and {high}")
    from cases.reminders import QuietHours

    try:
        QuietHours.parse(s.quiet_hours)
    except ValueError as exc:
        raise SettingsError(f"QIANLI_QUIET_HOURS={s.quiet_hours!r}: {exc}") from exc
    try:
        QuietHours.parse(s.task_reminder_hours)
    except ValueError as exc:
        raise SettingsError(f"QIANLI_TASK_REMINDER_HOURS={s.task_reminder_hours!r}: {exc}") from exc
    if not 0 <= s.task_reminder_lead_days <= 30:
        raise SettingsError(f"QIANLI_TASK_REMINDER_LEAD_DAYS={s.task_reminder_lead_days}: must be between 0 and 30")
    for f in dataclasses.fields(Settings):
        if f.type in ("int", "float", int, float) and getattr(s, f.name) < 0:
            raise SettingsError(f"{f.metadata['env']}={getattr(s, f.name)!r}: must not be negative")
    if not 0 < s.sqlite_busy_timeout_s <= 600:
        raise SettingsError(f"QIANLI_SQLITE_BUSY_TIMEOUT_S={s.sqlite_busy_timeout_s!r}: must be > 0 and <= 600 seconds")
    if s.tsa_url and not s.tsa_trust_roots:
        raise SettingsError("QIANLI_TSA_TRUST_ROOTS must name a PEM file with the root certificate(s) of the TSA "
                            "at QIANLI_TSA_URL")
    if s.tsa_trust_roots:
        try:
            pem = Path(s.tsa_trust_roots).read_bytes()
        except OSError as exc:
            raise SettingsError(f"QIANLI_TSA_TRUST_ROOTS={s.tsa_trust_roots!r}: cannot read ({exc.strerror})") from exc
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            raise SettingsError(f"QIANLI_TSA_TRUST_ROOTS={s.tsa_trust_roots!r}: no PEM certificate in the file")
    if not 1 <= s.identity_cooling_days <= 90:
        raise SettingsError(f"QIANLI_IDENTITY_COOLING_DAYS={s.identity_cooling_days}: must be between 1 and 90")
    if s.anchor_interval_s < 60:
        raise SettingsError(f"QIANLI_ANCHOR_INTERVAL_S={s.anchor_interval_s}: at least 60 seconds")
    if s.migration_database_url and s.migration_database_url.split(":", 1)[0] != s.database_url.split(":", 1)[0]:
        raise SettingsError("QIANLI_MIGRATION_DATABASE_URL must name the same kind of database as DATABASE_URL")
    if s.metrics_token and len(s.metrics_token) < 16:
        raise SettingsError("QIANLI_METRICS_TOKEN must be at least 16 characters (or empty: loopback only)")
    if not 1 <= s.return_notice_deadline_days <= 30:
        raise SettingsError(f"QIANLI_RETURN_NOTICE_DEADLINE_DAYS={s.return_notice_deadline_days}: must be between 1 and 30")
    if s.termination_records_retention_days < 730:
        raise SettingsError(f"QIANLI_TERMINATION_RECORDS_RETENTION_DAYS={s.termination_records_retention_days}: "
                            "at least 730 (termination documents are kept 2 years)")
    for var, value, low, high in (("QIANLI_ALUMNI_CONSENT_GRACE_DAYS", s.alumni_consent_grace_days, 0, 365),
                                  ("QIANLI_ALUMNI_SEND_RATE_PER_MINUTE", s.alumni_send_rate_per_minute, 1, 6000),
                                  ("QIANLI_ALUMNI_FREQUENCY_CAP", s.alumni_frequency_cap, 1, 100),
                                  ("QIANLI_ALUMNI_FREQUENCY_WINDOW_DAYS", s.alumni_frequency_window_days, 1, 365)):
        if not low <= value <= high:
            raise SettingsError(f"{var}={value}: must be between {low} and {high}")
    try:
        QuietHours.parse(s.alumni_quiet_hours)
    except ValueError as exc:
        raise SettingsError(f"QIANLI_ALUMNI_QUIET_HOURS={s.alumni_quiet_hours!r}: {exc}") from exc
    if s.sms_reply_token and len(s.sms_reply_token) < 16:
        raise SettingsError("QIANLI_SMS_REPLY_TOKEN must be at least 16 characters (or empty: disabled)")
    if not 1 <= s.chat_notice_window_days <= 3650:
        raise SettingsError(f"QIANLI_CHAT_NOTICE_WINDOW_DAYS={s.chat_notice_window_days}: must be between 1 and 3650")
    if s.faceid_backend == "tencent" and not (s.faceid_tencent_secret_id and s.faceid_tencent_secret_key
                                              and s.faceid_tencent_rule_id):
        raise SettingsError("QIANLI_FACEID_TENCENT_SECRET_ID, _SECRET_KEY and _RULE_ID are required with "
                            "QIANLI_FACEID_BACKEND=tencent")
    if s.is_production:
        if s.wechat_backend == "dev":
            raise SettingsError("QIANLI_WECHAT_BACKEND=dev is for development only")
        if s.sms_backend == "dev":
            raise SettingsError("QIANLI_SMS_BACKEND=dev is for development only")
        if not s.tsa_url:
            raise SettingsError("QIANLI_TSA_URL must name a trusted TSA in production")
        if s.database_url.startswith("sqlite"):
            raise SettingsError("DATABASE_URL must be PostgreSQL in production")
        if s.sms_tencent_endpoint.startswith("http://"):
            raise SettingsError("QIANLI_SMS_TENCENT_ENDPOINT must not be plain http:// in production")
    s.webhook_retry_delays()
    if s.webhook_disable_after_s < 0:
        raise SettingsError(f"QIANLI_WEBHOOK_DISABLE_AFTER_S={s.webhook_disable_after_s}: must be 0 (never) or more")
    if not 1 <= s.webhook_timeout_s <= 60:
        raise SettingsError(f"QIANLI_WEBHOOK_TIMEOUT_S={s.webhook_timeout_s}: must be between 1 and 60 seconds")
    if s.webhook_lease_s <= s.webhook_timeout_s + 5:
        raise SettingsError(f"QIANLI_WEBHOOK_LEASE_S={s.webhook_lease_s}: must exceed QIANLI_WEBHOOK_TIMEOUT_S by more "
                            "than 5 seconds")
    if s.revocation_confirm_deadline_s < 60:
        raise SettingsError(f"QIANLI_REVOCATION_CONFIRM_DEADLINE_S={s.revocation_confirm_deadline_s}: at least 60 seconds")
    if s.wecom_backend == "api" and not (s.wecom_corp_id and s.wecom_secret and s.wecom_agent_id > 0):
        raise SettingsError("QIANLI_WECOM_CORP_ID, QIANLI_WECOM_SECRET and QIANLI_WECOM_AGENT_ID are required with "
                            "QIANLI_WECOM_BACKEND=api")
    if s.is_production and s.wecom_backend == "dev":
        raise SettingsError("QIANLI_WECOM_BACKEND=dev is for development only")
    if s.wechat_backend == "api" and not (s.wechat_appid and s.wechat_appsecret):
        raise SettingsError("QIANLI_WECHAT_APPID and QIANLI_WECHAT_APPSECRET are required with QIANLI_WECHAT_BACKEND=api")


_cached: Settings | None = None


def get_settings() -> Settings:
    """Process-wide settings, loaded on first use."""
    global _cached
    if _cached is None:
        _cached = load_settings()
    return _cached


def reset_settings_cache(settings: Settings | None = None) -> None:
    """Tests and the CLI swap settings explicitly; nothing else should."""
    global _cached
    _cached = settings


def settings_table() -> str:
    """Markdown table of every setting for the README."""
    rows = ["| variable | default | meaning |", "| --- | --- | --- |"]
    for f in dataclasses.fields(Settings):
        default = f.default
        shown = "(generated in development)" if f.metadata.get("secret") else (f"`{default}`" if default not in ("", None) else "")
        if f.name == "database_url":
            shown = "`sqlite:///var/qianli.db`"
        rows.append(f"| `{f.metadata['env']}` | {shown} | {f.metadata['help']} |")
    return "\n".join(rows)


