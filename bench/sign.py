"""Signing speed: pyHanko's naive B-T against QianLi's whole B-LTA signing step, on the same letter,
the same kind of key (an EC P-256 event certificate from our issuing CA) and the same local TSA.

- (a) ``naive_bt``: pyHanko's default ``signers.sign_pdf`` at PAdES B-T (subfilter
  ETSI.CAdES.detached, a signature timestamp, an invisible new field, the default dry-run size
  estimate), with ONE ``PdfSignatureMetadata``, ONE signer and ONE timestamper reused across calls:
  the best naive usage. The signer is ``signing.pades.KeySigner`` (pyHanko's ``SimpleSigner`` signing
  with the loaded key): pyHanko builds its CMS, not QianLi's ``DerCmsSigner``.
- (b) ``qianli_blta``: what ``sign_letter`` does once the intent is spent, per letter: a fresh event
  key pair and certificate, ``signing.pades.sign_b_lta`` (visible signature with the handwritten PNG
  and CJK text, signature timestamp, CRLs + OCSP in the DSS, document timestamp) with the timestamper
  ``make_timestamper`` gives (one per process and TSA, as in the service), and the key dropped.
- ``ratio`` is wall-clock p50 (b) / p50 (a), interleaved; ``ratio_cpu`` the same with each call's CPU time
  (``time.thread_time``), which the other work on a shared machine disturbs less.
- ``letters_per_s_2proc``: (b) in a loop in two worker processes at once, for ``--window`` seconds.
- ``letters_per_s_net_tsa``: the same with the TSA over the network: QianLi's TSA (``signing.tsa.respond``,
  what ``POST /pki/tsa`` serves) on an HTTP server on loopback that adds ``--tsa-delay-ms`` (20 ms) to
  every request, reached through ``signing.tsa.HttpTsa`` (pyHanko's ``HTTPTimeStamper``; ``QIANLI_TSA_URL``,
  as in production). The server sets TCP_NODELAY, as gunicorn and common proxies do: without it a response
  written as headers then body waits for the client's delayed ACK (up to 40 ms per request on Linux), a
  property of this test server and not of a network TSA. The TSA's chain is validated as an external
  TSA's is (``signing.pades.tsa_validation_data``).
  Each of the 2 processes signs with ``--threads`` threads (4: one gunicorn worker's threads, the way
  concurrent signLetter requests arrive), so one letter's two TSA round trips overlap another's CPU work.
  ``letters_per_s_net_tsa_1thread`` is one thread per process (every round trip waited for).

The TSA is QianLi's development TSA (``signing.tsa.DevTsa``) **in process** for both: no HTTP round
trip, so the figures measure the signing work, not a network. A real TSA adds its round trip to (a)
once per signature and to (b) twice (signature timestamp and document timestamp), plus one per
process for the dummy token pyHanko caches in the timestamper (size estimate, TSA certificates).

Both outputs are verified once (outside the timing) with ``signing.verify`` against our root:
(a) must be intact and valid at B-T (it carries no revocation data, so it cannot be "trusted" under
our verifier's policy), (b) must pass at B-LTA. The last line printed is one JSON object.

    .venv/bin/python bench/sign.py [--runs 15] [--window 15]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter  # noqa: E402
from pyhanko.sign import signers  # noqa: E402
from pyhanko.sign.fields import SigSeedSubFilter  # noqa: E402
from pyhanko_certvalidator.registry import SimpleCertificateStore  # noqa: E402

from qianli.cli.pki import SAMPLE_EMPLOYEE, sample_letter, sample_signature_png, sign_as_employee  # noqa: E402
from qianli.settings import load_settings, reset_settings_cache  # noqa: E402
from signing import pades  # noqa: E402
from signing.appearance import Appearance, stamp_style  # noqa: E402
from signing.letter import render_letter, stamp_font_path  # noqa: E402
from signing.pki import der_to_asn1, init_pki  # noqa: E402
from signing.tsa import DevTsa  # noqa: E402
from signing.verify import verify_pdf  # noqa: E402

EMP = dict(name=SAMPLE_EMPLOYEE["name"], employee_no=SAMPLE_EMPLOYEE["employee_no"], company=SAMPLE_EMPLOYEE["company"])


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


class Naive:
    """(a): one metadata object, one signer, one timestamper, reused; pyHanko's defaults otherwise."""

    def __init__(self, pki, *, visible_png: bytes | None = None, font: str | None = None, layout=None):
        self.cred = pki.issue_event_credential(**EMP)  # same kind of key as (b), issued once
        # pyHanko's SimpleSigner signing with the loaded key (no DER re-import per signature); pyHanko builds the
        # CMS (not QianLi's DerCmsSigner, which assembles it from DER parts)
        self.signer = pades.KeySigner(key=self.cred.key, signing_cert=der_to_asn1(self.cred.cert),
                                      cert_registry=SimpleCertificateStore.from_certs(
                                          [der_to_asn1(c) for c in self.cred.chain]))
        self.timestamper = DevTsa(pki)
        self.meta = signers.PdfSignatureMetadata(field_name="Signature1", subfilter=SigSeedSubFilter.PADES,
                                                 md_algorithm="sha256")
        self.field_spec = None
        self.stamp = None
        if visible_png is not None:  # extra figure only: the same visible appearance as (b), still naive
            from pyhanko.sign import fields

            self.field_spec = fields.SigFieldSpec(sig_field_name="Signature1", on_page=layout.page,
                                                  box=layout.employee_box)
            self.stamp = stamp_style(Appearance(visible_png, "签署人：自检员工", "签署时间：—", font),
                                            layout.employee_box)

    def sign(self, pdf: bytes) -> bytes:
        out = io.BytesIO()
        w = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
        if self.stamp is None:
            signers.sign_pdf(w, self.meta, self.signer, timestamper=self.timestamper, output=out)
        else:
            signers.PdfSigner(self.meta, self.signer, timestamper=self.timestamper, stamp_style=self.stamp,
                              new_field_spec=self.field_spec).sign_pdf(w, output=out)
        return out.getvalue()


def qianli_sign(settings, pki, pdf: bytes, layout, png: bytes) -> bytes:
    """(b): the service's signing step (timestamper from make_timestamper, as the service does)."""
    return sign_as_employee(settings, pki, pdf, layout, signature_png=png, **EMP)[0]


def _timed(fn, runs: int, cpu: list[float] | None = None) -> list[float]:
    """Wall milliseconds per call; with ``cpu``, this thread's CPU milliseconds are appended to it (waiting
    for the CPU on a loaded machine is not counted: the figure other helpers' load disturbs least)."""
    out = []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.thread_time()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
        if cpu is not None:
            cpu.append((time.thread_time() - c0) * 1000)
    return out


_STATE: tuple = ()  # (settings, pki, pdf, layout, png): set before forking, inherited by the workers


def _worker(barrier, window: float, threads: int, results) -> None:
    import threading

    settings, pki, pdf, layout, png = _STATE
    qianli_sign(settings, pki, pdf, layout, png)  # warm this process
    barrier.wait()
    start, cpu0 = time.perf_counter(), time.process_time()
    deadline = start + window
    counts = [0] * threads

    def loop(i: int) -> None:
        while time.perf_counter() < deadline:
            qianli_sign(settings, pki, pdf, layout, png)
            counts[i] += 1

    pool = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    results.put((sum(counts), start, time.perf_counter(), time.process_time() - cpu0))


def _two_processes(settings, pki, pdf, layout, png, window: float, procs: int = 2,
                   threads: int = 1) -> tuple[float, int, float, float]:
    """(letters/s, letters, seconds, CPU ms per letter in the signing processes) of ``procs`` processes."""
    global _STATE
    _STATE = (settings, pki, pdf, layout, png)
    ctx = mp.get_context("fork")  # each worker then has its own PKI objects, signer state and caches
    barrier, results = ctx.Barrier(procs), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(barrier, window, threads, results)) for _ in range(procs)]
    for w in workers:
        w.start()
    got = [results.get(timeout=window + 120) for _ in workers]
    for w in workers:
        w.join()
    total = sum(r[0] for r in got)
    # time.perf_counter is CLOCK_MONOTONIC on Linux: comparable across processes
    span = max(r[2] for r in got) - min(r[1] for r in got)
    return total / span, total, span, sum(r[3] for r in got) * 1000 / max(total, 1)


class NetTsa:
    """QianLi's TSA over HTTP on loopback (what ``POST /pki/tsa`` answers), ``delay`` seconds added per request."""

    def __init__(self, pki, delay: float):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from threading import Thread

        from signing.tsa import respond

        owner = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a real TSA behind a proxy
            disable_nagle_algorithm = True  # TCP_NODELAY, as gunicorn sets it (see the module docstring)

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(delay)
                der = respond(pki, body)
                owner.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(der)))
                self.end_headers()
                self.wfile.write(der)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/tsa"
        Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15, help="timed signatures of each kind (after 2 warm-ups)")
    ap.add_argument("--window", type=float, default=15.0, help="seconds the two worker processes sign")
    ap.add_argument("--tsa-delay-ms", type=float, default=20.0, help="added to every request of the network TSA")
    ap.add_argument("--threads", type=int, default=4, help="signing threads per process with the network TSA")
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    tmp = Path(tempfile.mkdtemp(prefix="qianli-bench-sign-"))
    settings = load_settings({"QIANLI_ENV": "test", "QIANLI_VAR_DIR": str(tmp / "var"), "QIANLI_TSA_URL": "",
                              "DATABASE_URL": f"sqlite:///{tmp / 'unused.db'}", "QIANLI_LOG_LEVEL": "ERROR"})
    reset_settings_cache(settings)
    pki, _ = init_pki(settings)
    pdf, layout = render_letter(sample_letter(date(2026, 10, 1)))
    png = sample_signature_png()
    font = stamp_font_path(str(settings.var_dir / "fonts"))
    print(f"letter: {len(pdf)} bytes, {layout.page + 1} page(s); TSA: DevTsa in process (no network); "
          f"cpus: {os.cpu_count()}", flush=True)

    naive = Naive(pki)
    naive_visible = Naive(pki, visible_png=png, font=font, layout=layout)
    for _ in range(2):  # warm-up: imports, font parsing, the timestamper's cached dummy response
        naive.sign(pdf)
        naive_visible.sign(pdf)
        qianli_sign(settings, pki, pdf, layout, png)

    t_naive, t_visible, t_blta = [], [], []
    c_naive: list[float] = []
    c_blta: list[float] = []
    for _ in range(args.runs):  # interleaved, so load on this shared machine hits all three alike
        t_naive += _timed(lambda: naive.sign(pdf), 1, c_naive)
        t_visible += _timed(lambda: naive_visible.sign(pdf), 1)
        t_blta += _timed(lambda: qianli_sign(settings, pki, pdf, layout, png), 1, c_blta)

    bt_pdf, blta_pdf = naive.sign(pdf), qianli_sign(settings, pki, pdf, layout, png)
    levels = {}
    for name, data in (("naive", bt_pdf), ("qianli", blta_pdf)):
        rep = verify_pdf(data, trust_roots=[pki.root_pem])
        sig = next(s for s in rep.signatures if s.kind == "signature")
        levels[name] = sig.pades_level
        # B-T embeds no CRL/OCSP, so our verifier (revocation data required) cannot call (a) trusted; intact and
        # cryptographically valid it must be. (b) must pass AdES LTA validation against our root.
        assert sig.intact and sig.valid and (name == "naive" or sig.trusted), (name, sig)
    assert levels == {"naive": "B-T", "qianli": "B-LTA"}, levels

    a50, b50 = statistics.median(t_naive), statistics.median(t_blta)
    print(f"(a) naive sign_pdf B-T, invisible:  p50 {a50:.1f} ms  p95 {_pct(t_naive, 95):.1f} ms  "
          f"({len(bt_pdf)} bytes)")
    print(f"    naive B-T, same visible stamp:  p50 {statistics.median(t_visible):.1f} ms  "
          f"p95 {_pct(t_visible, 95):.1f} ms")
    print(f"(b) QianLi B-LTA signing step:     p50 {b50:.1f} ms  p95 {_pct(t_blta, 95):.1f} ms  "
          f"({len(blta_pdf)} bytes)")
    ca50, cb50 = statistics.median(c_naive), statistics.median(c_blta)
    print(f"ratio b/a {b50 / a50:.2f} (goal <= 1.0); verified: (a) {levels['naive']}, (b) {levels['qianli']}",
          flush=True)
    print(f"CPU time (this thread): (a) p50 {ca50:.1f} ms, (b) p50 {cb50:.1f} ms, ratio {cb50 / ca50:.2f}", flush=True)

    per_s, total, span, cpu_2proc = _two_processes(settings, pki, pdf, layout, png, args.window)
    print(f"2 worker processes: {total} B-LTA letters in {span:.1f} s = {per_s:.2f} letters/s "
          f"({cpu_2proc:.1f} ms CPU per letter)", flush=True)

    from dataclasses import replace

    net = NetTsa(pki, args.tsa_delay_ms / 1000)
    try:
        net_settings = replace(settings, tsa_url=net.url)
        net_pdf = qianli_sign(net_settings, pki, pdf, layout, png)
        rep = verify_pdf(net_pdf, trust_roots=[pki.root_pem])
        sig = next(s for s in rep.signatures if s.kind == "signature")
        assert sig.intact and sig.valid and sig.trusted and sig.pades_level == "B-LTA", sig
        n0 = net.requests
        qianli_sign(net_settings, pki, pdf, layout, png)
        per_letter = net.requests - n0
        net1, total1, span1, _ = _two_processes(net_settings, pki, pdf, layout, png, args.window, threads=1)
        print(f"network TSA (+{args.tsa_delay_ms:g} ms, {per_letter} requests per letter), 2 processes x 1 thread: "
              f"{total1} letters in {span1:.1f} s = {net1:.2f} letters/s", flush=True)
        netn, totaln, spann, cpu_net = _two_processes(net_settings, pki, pdf, layout, png, args.window,
                                                      threads=args.threads)
        print(f"network TSA, 2 processes x {args.threads} threads: {totaln} letters in {spann:.1f} s = "
              f"{netn:.2f} letters/s ({cpu_net:.1f} ms CPU per letter in the signing processes)", flush=True)
    finally:
        net.close()
    print(json.dumps({
        "naive_bt_p50_ms": round(a50, 1), "qianli_blta_p50_ms": round(b50, 1), "ratio": round(b50 / a50, 2),
        "letters_per_s_2proc": round(per_s, 2), "letters_per_s_net_tsa": round(netn, 2),
        "letters_per_s_net_tsa_1thread": round(net1, 2), "net_tsa_delay_ms": args.tsa_delay_ms,
        "net_tsa_requests_per_letter": per_letter, "threads_per_process": args.threads,
        "load": round(os.getloadavg()[0], 2),
        "naive_bt_p95_ms": round(_pct(t_naive, 95), 1), "qianli_blta_p95_ms": round(_pct(t_blta, 95), 1),
        "naive_bt_visible_p50_ms": round(statistics.median(t_visible), 1), "runs": args.runs,
        "naive_bt_cpu_p50_ms": round(ca50, 1), "qianli_blta_cpu_p50_ms": round(cb50, 1),
        "ratio_cpu": round(cb50 / ca50, 2), "cpu_ms_per_letter_2proc": round(cpu_2proc, 1),
        "cpu_ms_per_letter_net_tsa": round(cpu_net, 1),
        "tsa": "DevTsa in process (no network round trip)", "goal_ratio_met": b50 / a50 <= 1.0,
    }))


if __name__ == "__main__":
    main()
