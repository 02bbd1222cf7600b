"""``qianli demo``: one whole resignation driven through the *running* service over HTTP.

The demo is an HTTP client and nothing else: it plays the mini-program (development WeChat
login, binding with an SMS code read from the development outbox, the form, the face check with
a fixture photo animated into a liveness burst, the SMS code for signing, the letter preview,
the signature) and HR (roster import, reference photo, the two approvals with the company
countersignature, the dossier). Paths come from the service's own ``/openapi.json`` by
operationId; the only path outside the contract is the development SMS outbox
(``/api/v1/dev/outbox``), which exists in development only.

Every step prints one numbered line with its duration. The first failing step stops the demo
with its HTTP status and response body, exit status 1. The final (countersigned) PDF, the
employee-signed PDF, the dossier zip and ``demo-summary.json`` are left in ``--out``.

The service needs the development seed (``qianli dev seed``: company ``demo``, HR logins ``hr``
and ``head``), the development WeChat and SMS backends, and an rq worker for the reminders
(``make run`` starts all of it).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import random
import secrets
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from cases.clock import SHANGHAI

__all__ = ["demo_command", "run_demo", "DemoFailed", "DemoContext", "DemoHooks", "signature_png", "DEFAULT_BASE_URL",
           "sign_letter", "approve_all_levels", "hr_login_step", "dev_clock", "CLOCK_PATH", "FACES"]

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
FACES = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "faces"
OUTBOX_PATH = "/api/v1/dev/outbox"  # development only, outside the contract
CLOCK_PATH = "/api/v1/dev/clock"  # development only, outside the contract
DEMO_DEPARTMENT = "研发部"  # the seeded department head's department
TIMEOUT_S = 120
RETRIES = 5  # after a lost connection (repeatable requests) or a 503 with Retry-After


class DemoFailed(Exception):
    """A step failed: what was asked, and what the service answered."""

    def __init__(self, message: str, *, status: int | None = None, body: str | None = None):
        super().__init__(message)
        self.message, self.status, self.body = message, status, body


@dataclass
class StepLog:
    number: int
    title: str
    seconds: float
    detail: str = ""


@dataclass
class DemoResult:
    case_id: str
    employee_no: str
    files: dict[str, str]
    steps: list[StepLog] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoContext:
    """What a scenario built on the resignation demo needs to go on (``qianli.cli.demo_offboarding``)."""

    api: Api
    run: Runner
    out_dir: Path
    company: str
    password: str
    hr_users: dict[str, str]
    hr_tokens: dict[str, str]
    emp: dict[str, Any]
    case: dict[str, Any]
    facts: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)

    def hr_token(self, role: str) -> str:
        """A logged-in HR user of ``role`` (logging in on first use, as a step)."""
        user = self.hr_users.get(role) or self.hr_users["hr_manager"]
        if user not in self.hr_tokens:
            hr_login_step(self.api, self.run, company=self.company, username=user, password=self.password,
                          hr_tokens=self.hr_tokens)
        return self.hr_tokens[user]


class DemoHooks:
    """Extension points of the resignation demo: ``prepare`` right after HR's first login, ``finish``
    after the dossier (the case is approved); either may add steps and files."""

    def prepare(self, ctx: DemoContext) -> None:
        pass

    def finish(self, ctx: DemoContext) -> None:
        pass


# ---- the signature ------------------------------------------------------------------------------

def signature_png(*, seed: int | None = None, width: int = 480, height: int = 160) -> bytes:
    """A handwritten-looking signature: a few cursive strokes with pen pressure, on a transparent
    background (what the mini-program's canvas gives), drawn at 3x and downsampled (anti-aliasing)."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    k = 3
    img = Image.new("L", (width * k, height * k), 0)
    d = ImageDraw.Draw(img)

    def stroke(points: list[tuple[float, float]], base: float) -> None:
        n = len(points)
        for i in range(n - 1):
            t = i / max(n - 2, 1)
            pressure = 0.45 + 0.75 * math.sin(math.pi * min(1.0, t * 1.15)) ** 0.7  # thin start and tail
            w = max(1.0, base * pressure) * k
            (x0, y0), (x1, y1) = points[i], points[i + 1]
            d.line([(x0 * k, y0 * k), (x1 * k, y1 * k)], fill=255, width=int(round(w)))
            r = w / 2
            d.ellipse([x1 * k - r, y1 * k - r, x1 * k + r, y1 * k + r], fill=255)

    mid = height * 0.55
    # the name: a run of loops moving right, like cursive letters joined up
    x0, x1 = width * 0.06, width * 0.70
    loops = rng.randint(5, 7)
    amp = [rng.uniform(0.16, 0.30) * height for _ in range(loops + 1)]
    pts = []
    for i in range(421):
        t = i / 420
        j = min(int(t * loops), loops - 1)
        a = amp[j] + (amp[j + 1] - amp[j]) * (t * loops - j)
        phase = 2 * math.pi * loops * t
        # a prolate cycloid (the pen swings back faster than it moves on: loops), slanted to the right
        y = mid - a * math.cos(phase) * (0.7 + 0.3 * math.cos(phase / 3)) - 0.08 * height * t
        x = x0 + (x1 - x0) * t - 0.16 * height * math.sin(phase) + 0.35 * (mid - y)
        pts.append((x, y))
    stroke(pts, 4.2)
    # a second, smaller word
    x2, x3 = width * 0.66, width * 0.90
    pts = [(x2 + (x3 - x2) * t - 0.06 * height * math.sin(6 * math.pi * t),
            mid - 0.05 * height - 0.14 * height * math.sin(6 * math.pi * t + 0.4))
           for t in (i / 200 for i in range(201))]
    stroke(pts, 3.4)
    # the underline flourish, from under the name out to the right, rising at its end
    pts = [(width * (0.10 + 0.82 * t), height * (0.82 - 0.05 * math.sin(math.pi * t) - 0.16 * t**4)) for t in
           (i / 160 for i in range(161))]
    stroke(pts, 3.0)

    alpha = img.resize((width, height), Image.Resampling.LANCZOS)
    ink = Image.new("RGBA", (width, height), (18, 24, 64, 0))
    ink.putalpha(alpha)
    out = io.BytesIO()
    ink.save(out, "PNG", optimize=True)
    return out.getvalue()


# ---- HTTP ---------------------------------------------------------------------------------------

class Api:
    """requests against the service; operations by operationId from its /openapi.json."""

    def __init__(self, base_url: str):
        import requests

        self.base = base_url.rstrip("/")
        self.http = requests.Session()
        self.http.headers["User-Agent"] = "qianli-demo/1"
        self.ops: dict[str, tuple[str, str]] = {}

    def load_contract(self) -> dict[str, Any]:
        resp = self._send("GET", "/openapi.json", None)
        spec = _json(resp)
        for path, item in spec.get("paths", {}).items():
            for method, op in item.items():
                if isinstance(op, dict) and op.get("operationId"):
                    self.ops[op["operationId"]] = (method.upper(), path)
        return spec

    def _send(self, method: str, path: str, token: str | None, **kw):
        """One request, retried the way a careful client retries: after a 503 that says when
        (``Retry-After``: the service did nothing and a dependency is briefly away), and after a
        lost connection only when repeating is safe (GET, or a request with an idempotency key)."""
        import requests

        headers = dict(kw.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        repeatable = method in ("GET", "HEAD") or "idempotency_key" in (kw.get("data") or {})
        for attempt in range(RETRIES + 1):
            last = attempt == RETRIES
            try:
                resp = self.http.request(method, self.base + path, headers=headers, timeout=TIMEOUT_S, **kw)
            except requests.ConnectionError as exc:
                if repeatable and not last:
                    time.sleep(1 + attempt)
                    continue
                raise DemoFailed(f"{method} {self.base + path}: {type(exc).__name__}: {exc}") from None
            except requests.RequestException as exc:
                raise DemoFailed(f"{method} {self.base + path}: {type(exc).__name__}: {exc}") from None
            retry_after = resp.headers.get("Retry-After", "")
            if resp.status_code == 503 and retry_after.isdigit() and not last:
                time.sleep(min(int(retry_after), 10))
                continue
            return resp
        raise AssertionError("unreachable")

    def call(self, operation_id: str, *, token: str | None = None, expect: tuple[int, ...] = (200,),
             path_params: dict[str, str] | None = None, **kw):
        if operation_id not in self.ops:
            raise DemoFailed(f"operation {operation_id!r} is not in the service's /openapi.json")
        method, template = self.ops[operation_id]
        path = template.format(**(path_params or {}))
        resp = self._send(method, path, token, **kw)
        if resp.status_code not in expect:
            raise DemoFailed(f"{operation_id}: {method} {path} answered {resp.status_code} (expected "
                             f"{'/'.join(map(str, expect))})", status=resp.status_code, body=_body_text(resp))
        return resp

    def outbox(self, phone: str) -> list[dict[str, Any]]:
        resp = self._send("GET", OUTBOX_PATH, None, params={"phone": phone, "limit": 50})
        if resp.status_code == 404:
            raise DemoFailed(f"GET {OUTBOX_PATH} answered 404: the service is not in development mode with the "
                             "development SMS outbox (QIANLI_ENV=development, QIANLI_SMS_BACKEND=dev)",
                             status=404, body=_body_text(resp))
        if resp.status_code != 200:
            raise DemoFailed(f"GET {OUTBOX_PATH} answered {resp.status_code}", status=resp.status_code,
                             body=_body_text(resp))
        return _json(resp)["messages"]


def _body_text(resp) -> str:
    ctype = resp.headers.get("Content-Type", "")
    if "json" in ctype or ctype.startswith("text/"):
        return resp.text[:4000]
    return f"<{len(resp.content)} bytes of {ctype or 'unknown type'}>"


def _json(resp) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise DemoFailed(f"{resp.request.method} {resp.url}: not JSON", status=resp.status_code,
                         body=_body_text(resp)) from None


def dev_clock(api: Api, body: dict[str, Any] | None = None) -> dict[str, Any]:
    """The deployment's development clock (``GET``), or move it (``POST`` ``body``: ``advance_days`` or
    ``offset_seconds``); development and test deployments only, from a loopback client."""
    resp = api._send("POST" if body is not None else "GET", CLOCK_PATH, None, json=body)
    if resp.status_code != 200:
        raise DemoFailed(f"{CLOCK_PATH} answered {resp.status_code}: the development clock needs a development "
                         "or test deployment and a loopback client", status=resp.status_code, body=resp.text[:2000])
    return _json(resp)


def _common_name(signer: str | None) -> str:
    """'Serial Number: …, Common Name: 孙悦, Organization: …' -> '孙悦'."""
    for part in (signer or "").split(", "):
        if part.startswith("Common Name: "):
            return part.removeprefix("Common Name: ")
    return signer or "?"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- the demo -----------------------------------------------------------------------------------

class Runner:
    def __init__(self, echo: Callable[..., None]):
        self.echo = echo
        self.n = 0
        self.steps: list[StepLog] = []

    def step(self, title: str, fn: Callable[[], tuple[Any, str] | Any]) -> Any:
        self.n += 1
        self.echo(f"[{self.n:2d}] {title} … ", nl=False)
        t0 = time.perf_counter()
        try:
            out = fn()
        except DemoFailed:
            self.echo(f"FAILED ({time.perf_counter() - t0:.2f} s)")
            raise
        seconds = time.perf_counter() - t0
        value, detail = out if isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], str) else (out, "")
        self.echo(f"ok ({seconds:.2f} s){'  ' + detail if detail else ''}")
        self.steps.append(StepLog(self.n, title, round(seconds, 3), detail))
        return value


def _new_code(api: Api, phone: str, seen: set[str], *, wait_s: float = 10.0) -> str:
    """The newest verification code sent to ``phone`` that was not in the outbox before."""
    deadline = time.monotonic() + wait_s
    while True:
        for m in api.outbox(phone):  # newest first
            if m["id"] not in seen and m.get("template") == "code" and m.get("params", {}).get("code"):
                return m["params"]["code"]
        if time.monotonic() > deadline:
            raise DemoFailed(f"no new verification code for {phone} in the development outbox")
        time.sleep(0.2)


def _outbox_ids(api: Api, phone: str) -> set[str]:
    return {m["id"] for m in api.outbox(phone)}


def _status_counts(deliveries: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for d in deliveries:
        key = f"{d['channel']}:{d['status']}"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k}×{v}" for k, v in sorted(counts.items())) or "none"


def sign_letter(api: Api, run: Runner, *, emp: dict[str, Any], hr_token: str, case_id: str, phone: str, photo: Path,
                reference_photo: Path, seed: int, idempotency_key: str, out_dir: Path | None = None,
                facts: dict[str, Any] | None = None, who: str = "") -> dict[str, Any]:
    """The employee's part from the face consent to the signed letter, as steps: separate consent to face
    processing, HR's reference photo (confirmed by the employee), the liveness challenge and burst, the
    SMS code for signing, the letter preview, the signing intent and the handwritten signature.
    ``emp`` holds the employee's ``token`` and ``id``; ``who`` is appended to each step's title (a demo
    with several employees). Returns (and adds to ``facts``) ``face`` and ``signed``."""
    out: dict[str, Any] = facts if facts is not None else {}
    ids = {"case_id": case_id}
    photo_bytes, reference_bytes = photo.read_bytes(), reference_photo.read_bytes()

    # -- the face check ---------------------------------------------------------------------------
    def consent():
        text = _json(api.call("getFaceConsent", token=emp["token"]))
        body = _json(api.call("giveFaceConsent", token=emp["token"], expect=(201,),
                              json={"agree": True, "text_version": text["text_version"]}))
        return body, f"consent {body['text_version']} ({body['method']})"
    run.step(f"员工人脸识别单独同意 getFaceConsent + giveFaceConsent{who}", consent)

    def enrol():
        body = _json(api.call("enrolFace", token=hr_token, expect=(201,),
                              path_params={"employee_id": emp["id"]},
                              files={"photo": (reference_photo.name, reference_bytes, "image/jpeg")}))
        if not body.get("enrolled"):
            raise DemoFailed("enrolFace did not enrol", body=json.dumps(body, ensure_ascii=False))
        return body, f"reference photo {reference_photo.name} enrolled (version {body.get('version')})"
    run.step(f"HR 录入参考照片 enrolFace{who}", enrol)

    def confirm_reference():
        mine = _json(api.call("getMyFaceReference", token=emp["token"]))
        body = _json(api.call("confirmFaceReference", token=emp["token"],
                              json={"version": mine["version"], "accept": True}))
        if body.get("needs_confirmation"):
            raise DemoFailed("confirmFaceReference did not confirm", body=json.dumps(body, ensure_ascii=False))
        return body, f"{body['source_label']} confirmed by the employee (version {body['version']})"
    run.step(f"员工确认 HR 提供的参考照片 confirmFaceReference{who}", confirm_reference)

    tries = 3  # like a person in front of the camera: a burst the service does not accept is taken again
    for attempt in range(tries):
        def challenge():
            body = _json(api.call("startLivenessChallenge", token=emp["token"], expect=(201,),
                                  json={"case_id": case_id}))
            return body, f"actions {' → '.join(body['actions'])}, {body['min_frames']}–{body['max_frames']} " \
                         f"frames, expires in {body['expires_in_s']} s"
        ch = run.step(f"活体挑战 startLivenessChallenge{who}", challenge)

        def burst(ch=ch, attempt=attempt):
            import warnings

            with warnings.catch_warnings():  # face_recognition_models still uses pkg_resources
                warnings.simplefilter("ignore")
                from qianli.cli.demo_frames import burst_for_challenge

                frames = burst_for_challenge(photo_bytes, ch["actions"], seed=seed + 7919 * attempt)
            return frames, f"{len(frames)} frames animated from {photo.name} (neutral, " \
                           f"{', neutral, '.join(ch['actions'])}, neutral), {sum(map(len, frames)) // 1024} KiB"
        frames = run.step(f"生成活体连拍 demo_frames.burst_for_challenge{who}", burst)

        def verify_face(ch=ch, frames=frames, attempt=attempt):
            files = [("frames", (f"frame{i}.jpg", f, "image/jpeg")) for i, f in enumerate(frames)]
            resp = api.call("verifyFace", token=emp["token"], path_params={"nonce": ch["nonce"]}, files=files,
                            expect=(200, 422))
            body = _json(resp)
            if resp.status_code == 422:
                if body.get("code") == "liveness_failed" and attempt + 1 < tries:
                    return None, f"422 liveness_failed ({(body.get('details') or {}).get('reason')}): taken again"
                raise DemoFailed("verifyFace answered 422", status=422, body=resp.text[:2000])
            if not body.get("verified"):
                raise DemoFailed("verifyFace did not verify", body=json.dumps(body, ensure_ascii=False))
            out["face"] = body
            return body, f"verified: distance {body['distance']:.3f} ≤ threshold {body['threshold']}"
        if run.step(f"人脸核验 verifyFace (multipart frames){who}", verify_face) is not None:
            break

    # -- the SMS code for signing, the letter, the intent, the signature ---------------------------
    def send_sign_code():
        emp["seen"] = _outbox_ids(api, phone)
        waited = 0.0
        while True:  # like the mini-program's countdown: one code per phone per QIANLI_SMS_RESEND_COOLDOWN_S
            resp = api.call("sendSmsCode", token=emp["token"], expect=(202, 429),
                            json={"purpose": "sign", "case_id": case_id})
            body = _json(resp)
            retry = (body.get("details") or {}).get("retry_after_s") if resp.status_code == 429 else None
            if resp.status_code == 202:
                break
            if body.get("code") != "sms_resend_cooldown" or not retry or waited + retry > 180:
                raise DemoFailed(f"sendSmsCode answered {resp.status_code}", status=resp.status_code, body=resp.text)
            time.sleep(float(retry) + 0.2)
            waited += float(retry) + 0.2
        note = f" (waited {waited:.0f} s: resend cooldown after the bind code)" if waited else ""
        return body, f"to {body['phone_masked']}{note}"
    run.step(f"发送签署验证码 sendSmsCode purpose=sign{who}", send_sign_code)

    sign_code = run.step(f"读取开发短信发件箱 GET {OUTBOX_PATH}{who}",
                         lambda: (lambda c: (c, f"code {c}"))(_new_code(api, phone, emp["seen"])))

    def verify_code():
        body = _json(api.call("verifySmsCode", token=emp["token"],
                              json={"purpose": "sign", "case_id": case_id, "code": sign_code}))
        if not body.get("verified"):
            raise DemoFailed("verifySmsCode did not verify", body=json.dumps(body, ensure_ascii=False))
        return body, "verified"
    run.step(f"核对签署验证码 verifySmsCode{who}", verify_code)

    def preview_letter():
        resp = api.call("previewLetter", token=emp["token"], path_params=ids)
        sha = resp.headers.get("X-Letter-SHA256", "")
        if sha != _sha256(resp.content):
            raise DemoFailed(f"X-Letter-SHA256 {sha!r} is not the SHA-256 of the PDF ({_sha256(resp.content)})")
        if out_dir is not None:
            (out_dir / "letter-preview.pdf").write_bytes(resp.content)
        return sha, f"{len(resp.content) // 1024} KiB PDF, SHA-256 {sha[:16]}…"
    letter_sha = run.step(f"预览辞职信 previewLetter (X-Letter-SHA256){who}", preview_letter)

    def intent():
        body = _json(api.call("createSigningIntent", token=emp["token"], expect=(201,),
                              json={"case_id": case_id, "letter_sha256": letter_sha}))
        return body, f"intent {body['intent_id'][:12]}…, expires {body['expires_at']}"
    signing_intent = run.step(f"签署意图 createSigningIntent (SMS + face within the window){who}", intent)

    def sign():
        png = signature_png(seed=seed)
        if out_dir is not None:
            (out_dir / "signature.png").write_bytes(png)
        body = _json(api.call("signLetter", token=emp["token"], expect=(201,), path_params=ids,
                              data={"intent_id": signing_intent["intent_id"], "idempotency_key": idempotency_key},
                              files={"signature": ("signature.png", png, "image/png")}))
        out["signed"] = body
        return body, (f"{body['pades_level']}, event certificate {body['event_cert_serial'][:16]}…, "
                      f"case {body['case_state']}")
    run.step(f"手写签名并签署 signLetter (multipart){who}", sign)
    return out


def hr_login_step(api: Api, run: Runner, *, company: str, username: str, password: str,
                  hr_tokens: dict[str, str]) -> str:
    """HR ``username`` logs in (one step); the token is kept in ``hr_tokens``."""
    def go():
        body = _json(api.call("hrLogin", json={"company_code": company, "username": username, "password": password}))
        hr_tokens[username] = body["access_token"]
        return body, f"{body['display_name']} ({body['role']})"
    run.step(f"HR 登录 hrLogin {company}/{username}", go)
    return hr_tokens[username]


def approve_all_levels(api: Api, run: Runner, *, case_id: str, company: str, password: str, hr_users: dict[str, str],
                       hr_tokens: dict[str, str], who: str = "") -> list[str]:
    """HR reads the case (getCase), then each level of the company's approval chain approves it (the final
    one countersigns the letter); HR users log in as needed. Returns the chain of roles."""
    ids = {"case_id": case_id}
    first = hr_users["hr_specialist"]
    if first not in hr_tokens:
        hr_login_step(api, run, company=company, username=first, password=password, hr_tokens=hr_tokens)

    def hr_case():
        body = _json(api.call("getCase", token=hr_tokens[first], path_params=ids))
        return body, f"state {body['state']}, chain {' → '.join(body['approval']['chain'])}, " \
                     f"evidence chain {'ok' if body['chain']['ok'] else 'BROKEN'} ({body['chain']['entries']} entries)"
    detail = run.step(f"HR 查看案件 getCase{who}", hr_case)
    chain: list[str] = detail["approval"]["chain"]
    manager = hr_users["hr_manager"]
    for level, role in enumerate(chain, start=1):
        user = hr_users.get(role) or manager
        if user not in hr_tokens:
            hr_login_step(api, run, company=company, username=user, password=password, hr_tokens=hr_tokens)
        if user != manager:  # e.g. the seeded department head heads one department: may they decide here?
            seen = api.call("getCase", token=hr_tokens[user], path_params=ids, expect=(200, 403, 404))
            if seen.status_code != 200 or "approve" not in _json(seen).get("allowed_actions", []):
                user = manager  # the HR manager may decide at any level
                if user not in hr_tokens:
                    hr_login_step(api, run, company=company, username=user, password=password, hr_tokens=hr_tokens)
        final = level == len(chain)
        by = role if user == hr_users.get(role) else f"{role} level by hr_manager"

        def approve(user=user, level=level, role=role):
            body = _json(api.call("approveCase", token=hr_tokens[user], path_params=ids,
                                  json={"comment": f"第{level}级审核（{role}）：确认最后工作日与交接事项。"}))
            return body, f"outcome {body['outcome']}, state {body['state']}, last day {body.get('agreed_last_day')}"
        run.step(f"第 {level} 级审核 approveCase ({by}{', final: company countersignature' if final else ''}){who}",
                 approve)
    return chain


def run_demo(base_url: str, out_dir: Path, *, photo: Path, reference_photo: Path, company: str, password: str,
             hr_users: dict[str, str], echo: Callable[..., None] = click.echo, seed: int | None = None,
             reminder_wait_s: float = 20.0, hooks: DemoHooks | None = None) -> DemoResult:
    api = Api(base_url)
    run = Runner(echo)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = datetime.now(SHANGHAI)
    tag = started.strftime("%Y%m%d%H%M%S") + secrets.token_hex(2)
    seed = seed if seed is not None else secrets.randbelow(2**31)
    employee_no = f"DEMO-{tag}"
    phone = "139" + "".join(str(secrets.randbelow(10)) for _ in range(8))
    openid = f"demo-{tag}"
    name = "孙悦"
    facts: dict[str, Any] = {"employee_no": employee_no, "phone": phone, "openid": openid, "base_url": api.base}
    hr_tokens: dict[str, str] = {}

    # -- contract and HR --------------------------------------------------------------------------
    def contract():
        spec = api.load_contract()
        health = _json(api.call("getHealth"))
        if health.get("environment") == "production":
            raise DemoFailed("the service runs in production: the demo needs development backends",
                             body=json.dumps(health))
        return spec, f"{len(api.ops)} operations in {spec.get('info', {}).get('title', '?')} " \
                     f"{spec.get('info', {}).get('version', '')}; environment {health.get('environment')}"
    run.step("读取接口契约 GET /openapi.json (operationIds)", contract)

    specialist = hr_users["hr_specialist"]
    hr_login_step(api, run, company=company, username=specialist, password=password, hr_tokens=hr_tokens)
    emp: dict[str, Any] = {}
    case: dict[str, Any] = {}
    hooks = hooks or DemoHooks()
    ctx = DemoContext(api=api, run=run, out_dir=out_dir, company=company, password=password, hr_users=hr_users,
                      hr_tokens=hr_tokens, emp=emp, case=case, facts=facts)
    hooks.prepare(ctx)

    def roster():
        csv_text = ("工号,姓名,部门,职位,入职日期,试用期结束,合同期限,手机号\n"
                    f"{employee_no},{name},{DEMO_DEPARTMENT},后端工程师,2023-03-01,2023-08-31,2023-03-01至2026-02-28,{phone}\n")
        body = _json(api.call("importRoster", token=hr_tokens[specialist],
                              files={"file": ("roster.csv", csv_text.encode("utf-8"), "text/csv")}))
        if not body.get("applied") or employee_no not in body.get("created_numbers", []):
            raise DemoFailed("importRoster did not create the employee", body=json.dumps(body, ensure_ascii=False))
        return body, f"created {employee_no} {name} {DEMO_DEPARTMENT}, phone {phone}"
    run.step("HR 导入花名册 importRoster (CSV)", roster)

    # -- the employee binds -----------------------------------------------------------------------

    def wechat_login():
        body = _json(api.call("wechatLogin", json={"code": f"dev-{openid}"}))
        if body.get("bound"):
            raise DemoFailed("a brand-new WeChat user is already bound", body=json.dumps(body, ensure_ascii=False))
        emp["pending"] = body["access_token"]
        return body, f"code dev-{openid}: pending session (bind only)"
    run.step("员工微信登录 wechatLogin (development code)", wechat_login)

    def send_bind_code():
        emp["seen"] = _outbox_ids(api, phone)
        body = _json(api.call("sendSmsCode", token=emp["pending"], expect=(202,), json={
            "purpose": "bind", "company_code": company, "employee_no": employee_no, "phone": phone}))
        return body, f"to {body['phone_masked']}, valid {body['expires_in_s']} s"
    run.step("发送绑定验证码 sendSmsCode purpose=bind", send_bind_code)

    def read_bind_code():
        code = _new_code(api, phone, emp["seen"])
        return code, f"code {code}"
    bind_code = run.step(f"读取开发短信发件箱 GET {OUTBOX_PATH}", read_bind_code)

    def bind():
        body = _json(api.call("bindEmployee", token=emp["pending"], json={
            "company_code": company, "employee_no": employee_no, "phone": phone, "sms_code": bind_code}))
        emp["token"], emp["id"] = body["access_token"], body["employee"]["id"]
        return body, f"employee {body['employee']['name']} ({body['employee']['employee_no']}) bound"
    run.step("绑定员工 bindEmployee", bind)

    # -- the form ---------------------------------------------------------------------------------
    def notice():
        today = datetime.now(SHANGHAI).date()
        body = _json(api.call("previewNoticePeriod", params={"arrival_date": today.isoformat(), "probation": "false",
                                                             "company_code": company}))
        return body, (f"arrival {body['arrival_date']}: {body['notice_days']} days' notice, earliest last day "
                      f"{body['earliest_last_day']}, letter due {body['letter_due_date']}"
                      f"{' (provisional)' if body['provisional'] else ''}")
    preview = run.step("预览通知期 previewNoticePeriod", notice)

    def submit():
        last_day = date.fromisoformat(preview["earliest_last_day"]) + timedelta(days=7)
        body = _json(api.call("submitResignation", token=emp["token"], expect=(201,), json={
            "reason_category": "career_development",
            "reason_text": "个人职业发展规划，感谢公司多年的培养。",
            "requested_last_day": last_day.isoformat(),
            "handover_items": [
                {"item": "订单服务代码仓库与部署权限", "owner": "李四", "deadline": last_day.isoformat()},
                {"item": "值班手册与告警规则说明", "owner": "王五", "deadline": last_day.isoformat()},
                {"item": "笔记本电脑与门禁卡归还", "owner": "行政部"},
            ]}))
        case.update(body)
        return body, f"case {body['id']} state {body['state']}, last day {body['requested_last_day']}, " \
                     f"letter due {body['letter_due_date']}"
    run.step("提交离职申请 submitResignation", submit)
    case_id = case["id"]
    ids = {"case_id": case_id}

    def first_reminders():
        deadline = time.monotonic() + reminder_wait_s
        while True:
            body = _json(api.call("listReminders", token=emp["token"], path_params=ids))
            sent = [d for d in body["deliveries"] if d["status"] == "sent"]
            if sent or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        facts["reminders_before_signing"] = body["deliveries"]
        note = "" if sent else "  (none sent yet: quiet hours, or no rq worker running)"
        return body, f"deliveries: {_status_counts(body['deliveries'])}; schedule " \
                     f"{(body.get('schedule') or {}).get('state')}{note}"
    run.step("催签提醒已发出 listReminders (notice, slot 0)", first_reminders)

    sign_letter(api, run, emp=emp, hr_token=hr_tokens[specialist], case_id=case_id, phone=phone, photo=photo,
                reference_photo=reference_photo, seed=seed, idempotency_key=f"demo-{tag}-sign", out_dir=out_dir,
                facts=facts)

    def employee_pdf():
        resp = api.call("getSignedLetter", token=emp["token"], path_params=ids)
        path = out_dir / "letter-employee-signed.pdf"
        path.write_bytes(resp.content)
        return resp.content, f"{len(resp.content) // 1024} KiB → {path}"
    run.step("下载已签名辞职信 getSignedLetter (employee)", employee_pdf)

    def reminders_stopped():
        # Signing pauses the schedule at once; a reminder already queued is dropped at send time.
        deadline = time.monotonic() + 10
        while True:
            body = _json(api.call("listReminders", token=emp["token"], path_params=ids))
            busy = [d for d in body["deliveries"] if d["status"] in ("pending", "sending")]
            if not busy or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        mine = _json(api.call("getMyCase", token=emp["token"], path_params=ids))
        if mine["state"] in ("awaiting_letter", "returned") or not mine.get("letter_submitted_at"):
            raise DemoFailed(f"the case still awaits the letter (state {mine['state']})",
                             body=json.dumps(mine, ensure_ascii=False))
        submitted = datetime.fromisoformat(mine["letter_submitted_at"])
        late = [d for d in body["deliveries"] if d["status"] == "sent" and d.get("finished_at")
                and datetime.fromisoformat(d["finished_at"]) > submitted]
        if late:
            raise DemoFailed("a reminder was sent after the signed letter", body=json.dumps(late, ensure_ascii=False))
        facts["reminders_after_signing"] = body
        schedule = body.get("schedule") or {}
        if schedule.get("state") != "paused":
            raise DemoFailed(f"the reminder schedule is still {schedule.get('state')} after the signed letter",
                             body=json.dumps(schedule, ensure_ascii=False))
        sched = f"schedule {schedule.get('state')} ({schedule.get('stop_reason')})"
        return body, (f"case {mine['state']} since {submitted.astimezone(SHANGHAI):%H:%M:%S}; deliveries: "
                      f"{_status_counts(body['deliveries'])}, none after the letter; {sched}")
    run.step("提醒已停止 listReminders (after the signed letter)", reminders_stopped)

    # -- HR review: each level of the company's chain, then the countersignature -------------------
    chain = approve_all_levels(api, run, case_id=case_id, company=company, password=password, hr_users=hr_users,
                               hr_tokens=hr_tokens)

    final_user = hr_users.get(chain[-1]) or hr_users["hr_manager"]

    def final_pdf():
        resp = api.call("getSignedLetter", token=hr_tokens[final_user], path_params=ids)
        path = out_dir / "signed-letter.pdf"
        path.write_bytes(resp.content)
        return resp.content, f"{len(resp.content) // 1024} KiB, SHA-256 {_sha256(resp.content)[:16]}… → {path}"
    final_bytes = run.step("下载会签后的辞职信 getSignedLetter (HR)", final_pdf)

    def verify_doc():
        body = _json(api.call("verifyDocument", token=hr_tokens[final_user],
                              files={"file": ("signed-letter.pdf", final_bytes, "application/pdf")}))
        sigs = [s for s in body["signatures"] if s["kind"] == "signature"]
        stamps = [s for s in body["signatures"] if s["kind"] == "document_timestamp"]
        facts["verification"] = body
        if not body["ok"] or len(sigs) < 2:
            raise DemoFailed(f"verifyDocument: ok={body['ok']}, {len(sigs)} signature(s) (want 2: employee + company)",
                             body=json.dumps(body, ensure_ascii=False))
        who = "; ".join(f"{_common_name(s.get('signer'))} {s.get('pades_level') or ''}".strip() for s in sigs)
        return body, f"ok, {len(sigs)} signatures ({who}), {len(stamps)} document timestamps, " \
                     f"{body['total_revisions']} revisions"
    run.step("验证签名 verifyDocument", verify_doc)

    def dossier():
        resp = api.call("exportDossier", token=hr_tokens[final_user], path_params=ids)
        path = out_dir / "dossier.zip"
        path.write_bytes(resp.content)
        with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
            members = zf.namelist()
        return resp.content, f"{len(members)} files, {len(resp.content) // 1024} KiB → {path}"
    run.step("导出仲裁证据包 exportDossier", dossier)

    hooks.finish(ctx)

    files = {"signed_pdf": str(out_dir / "signed-letter.pdf"),
             "employee_signed_pdf": str(out_dir / "letter-employee-signed.pdf"),
             "dossier": str(out_dir / "dossier.zip"), "letter_preview": str(out_dir / "letter-preview.pdf"),
             "signature": str(out_dir / "signature.png"), **ctx.files}
    result = DemoResult(case_id=case_id, employee_no=employee_no, files=files, steps=run.steps, facts=facts)
    summary = {"case_id": case_id, "employee_no": employee_no, "base_url": api.base, "files": files,
               "started_at": started.isoformat(), "seconds": round(sum(s.seconds for s in run.steps), 3),
               "steps": [s.__dict__ for s in run.steps]}
    (out_dir / "demo-summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    return result


def _offboarding_hooks() -> DemoHooks:
    from qianli.cli.demo_offboarding import OffboardingHooks

    return OffboardingHooks()


SCENARIOS: dict[str, Callable[[], DemoHooks]] = {"resignation": DemoHooks, "offboarding": _offboarding_hooks}
"""``--scenario`` name -> the hooks that extend the resignation demo."""


@click.command("demo", help="Drive one whole resignation through the running service over HTTP (development only); "
                            "leaves the signed PDF and the dossier zip in --out.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the signed PDF, the dossier zip and demo-summary.json.")
@click.option("--base-url", default=DEFAULT_BASE_URL, show_default=True, envvar="QIANLI_DEMO_URL",
              help="The running service (make run).")
@click.option("--photo", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=FACES / "obama.jpg",
              show_default=True, help="The 'camera' photo animated into the liveness burst.")
@click.option("--reference-photo", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=FACES / "obama2.jpg", show_default=True, help="The reference photo HR enrols.")
@click.option("--seed", type=int, default=None,
              help="Seed of the burst's sensor noise and the signature (default: random).")
@click.option("--scenario", type=click.Choice([*SCENARIOS, "alumni", "absconding"]), default="resignation",
              show_default=True,
              help="resignation: the form to the countersigned letter and the dossier. offboarding: the same, then a "
                   "local webhook receiver, the handover tasks, the last day (development clock), the certificate of "
                   "termination, the access revocation at 23:59 of the last day (received and confirmed by the "
                   "receiver) and closing (termination-certificate.pdf, webhook-deliveries.jsonl, "
                   "webhook-secret.txt). alumni: consent, four signed and approved letters, the last day (development "
                   "clock), certificates and closeCase, the pool, search, a job-opening campaign, "
                   "analytics.xlsx, departure-report.pdf and campaign-deliveries.jsonl. absconding: attendance with a "
                   "gap across a holiday, the risk list, the return-to-work notice, the deadline passed (development "
                   "clock), the union, the art. 39(2) dismissal (return-to-work-notice.pdf, dismissal-notice.pdf, "
                   "dossier.zip).")
def demo_command(out_dir: Path, base_url: str, photo: Path, reference_photo: Path, seed: int | None,
                 scenario: str) -> None:
    from qianli.cli.devseed import DEMO_COMPANY, DEMO_HR, DEMO_HR_PASSWORD

    hr_users = {role: username for username, _name, role, _dept in DEMO_HR}
    if scenario == "alumni":
        _alumni_scenario(out_dir, base_url, DEMO_COMPANY[0], DEMO_HR_PASSWORD, hr_users)
        return
    if scenario == "absconding":
        _absconding_scenario(out_dir, base_url, DEMO_COMPANY[0], DEMO_HR_PASSWORD, hr_users)
        return
    click.echo(f"QianLi demo ({scenario}) against {base_url} → {out_dir}")
    t0 = time.perf_counter()
    try:
        result = run_demo(base_url, out_dir, photo=photo, reference_photo=reference_photo, company=DEMO_COMPANY[0],
                          password=DEMO_HR_PASSWORD, hr_users=hr_users, seed=seed, hooks=SCENARIOS[scenario]())
    except DemoFailed as exc:
        _failed(exc)
    click.echo(f"done in {time.perf_counter() - t0:.1f} s: case {result.case_id} (employee {result.employee_no})")
    click.echo(f"  signed PDF (employee + company): {result.files['signed_pdf']}")
    click.echo(f"  dossier:                         {result.files['dossier']}")
    for key, label in (("termination_certificate", "certificate of termination:      "),
                       ("webhook_deliveries", "webhook deliveries received:     "),
                       ("webhook_secret", "webhook secret:                  ")):
        if key in result.files:
            click.echo(f"  {label}{result.files[key]}")
    access = result.facts.get("access_revocation")
    if access:
        rev = access.get("revocation") or {}
        click.echo(f"  access revoked ({rev.get('mode')}, sent {rev.get('sent_at')}), confirmed by: "
                   + ", ".join(f"{c['system']} ({c['status']})" for c in access.get("confirmations", [])))
    click.echo(f"  check offline: pdfsig {result.files['signed_pdf']}; qianli dossier verify {result.files['dossier']}")


def _failed(exc: DemoFailed) -> None:
    """The first failing step's question and the service's answer on stderr; exit status 1."""
    click.echo(f"demo FAILED: {exc.message}", err=True)
    if exc.status is not None:
        click.echo(f"HTTP status: {exc.status}", err=True)
    if exc.body:
        click.echo(f"response body: {exc.body}", err=True)
    sys.exit(1)


def _alumni_scenario(out_dir: Path, base_url: str, company: str, password: str, hr_users: dict[str, str]) -> None:
    from qianli.cli.demo_alumni import run_alumni_demo

    click.echo(f"QianLi demo (alumni) against {base_url} → {out_dir}")
    t0 = time.perf_counter()
    try:
        result = run_alumni_demo(base_url, out_dir, company=company, password=password, hr_users=hr_users)
    except DemoFailed as exc:
        _failed(exc)
    click.echo(f"done in {time.perf_counter() - t0:.1f} s")
    for name, path in result.files.items():
        click.echo(f"  {name}: {path}")


def _absconding_scenario(out_dir: Path, base_url: str, company: str, password: str, hr_users: dict[str, str]) -> None:
    from qianli.cli.demo_absconding import run_absconding_demo

    click.echo(f"QianLi demo (absconding) against {base_url} → {out_dir}")
    t0 = time.perf_counter()
    try:
        result = run_absconding_demo(base_url, out_dir, company=company, password=password, hr_users=hr_users)
    except DemoFailed as exc:
        _failed(exc)
    click.echo(f"done in {time.perf_counter() - t0:.1f} s: case {result.case_id} (employee {result.employee_no})")
    for name, path in result.files.items():
        click.echo(f"  {name}: {path}")
