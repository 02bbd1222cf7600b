"""Independent checks for signed PDFs: poppler's pdfsig with a throwaway NSS database trusting our root."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FIX_SOURCE = Path(__file__).resolve().parents[1] / "tools" / "pdfsig_pkix_fix.c"


@pytest.fixture(scope="session")
def pdfsig_fix(tmp_path_factory) -> Path:
    """Build the preload that makes Debian 12's pdfsig report NSS's real verdict (see the C file)."""
    if not shutil.which("gcc"):
        pytest.fail("gcc missing: run scripts/install-system.sh")
    out = tmp_path_factory.mktemp("pdfsig") / "pdfsig_pkix_fix.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-I/usr/include/nspr", "-o", str(out), str(FIX_SOURCE), "-ldl"],
                   check=True, capture_output=True)
    return out


class Pdfsig:
    def __init__(self, root_pem: bytes, workdir: Path, fix: Path):
        if not shutil.which("pdfsig") or not shutil.which("certutil"):
            pytest.fail("pdfsig/certutil missing: run scripts/install-system.sh (poppler-utils, libnss3-tools)")
        self.db = workdir / "nssdb"
        self.db.mkdir()
        (workdir / "root.pem").write_bytes(root_pem)
        subprocess.run(["certutil", "-N", "-d", f"sql:{self.db}", "--empty-password"], check=True, capture_output=True)
        subprocess.run(["certutil", "-A", "-d", f"sql:{self.db}", "-n", "qianli-root", "-t", "CT,C,C", "-i",
                        str(workdir / "root.pem")], check=True, capture_output=True)
        self.fix = fix

    def run(self, pdf: Path, *, fixed: bool = True) -> list[dict[str, str]]:
        env = {"PATH": "/usr/bin:/bin"}
        if fixed:
            env["LD_PRELOAD"] = str(self.fix)
        out = subprocess.run(["pdfsig", "-nssdir", f"sql:{self.db}", "-no-ocsp", str(pdf)], capture_output=True,
                             text=True, env=env).stdout
        sigs: list[dict[str, str]] = []
        for line in out.splitlines():
            if line.startswith("Signature #"):
                sigs.append({})
            elif line.strip().startswith("- ") and ":" in line and sigs:
                k, v = line.strip()[2:].split(":", 1)
                sigs[-1][k.strip()] = v.strip()
        return sigs


@pytest.fixture
def pdfsig_for(tmp_path, pdfsig_fix):
    return lambda root_pem: Pdfsig(root_pem, tmp_path, pdfsig_fix)
