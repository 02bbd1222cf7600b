"""Document storage: bytes by key, behind one small interface.

``local`` (default) keeps files under ``<var_dir>/documents``; ``s3`` talks to any S3-compatible
service (endpoint, bucket and credentials are settings). Keys are content-addressed
(``<company>/<sha256[:2]>/<sha256>``), so writing the same bytes twice is harmless and a stored
file can be checked against the SHA-256 kept in the database. Use :func:`store_document` to
write bytes and record the :class:`~qianli.models.Document` row in one step.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from cases.errors import NotFound, ServiceUnavailable
from qianli.models import DOCUMENT_KINDS, Document
from qianli.settings import Settings

__all__ = ["DocumentStore", "LocalStore", "S3Store", "open_store", "store_document", "read_document",
           "case_documents", "document_key", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def document_key(company_id: str, digest: str) -> str:
    return f"{company_id}/{digest[:2]}/{digest}"


class DocumentStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> None: ...

    def get(self, key: str) -> bytes: ...

    def exists(self, key: str) -> bool: ...

    def check(self) -> None: ...


class LocalStore:
    """Files under a directory; writes are atomic (temp file + rename)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        p = (self.root / key).resolve()
        if self.root.resolve() not in p.parents:
            raise ValueError(f"storage key escapes the store: {key!r}")
        return p

    def put(self, key: str, data: bytes, content_type: str) -> None:
        path = self._path(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound("document_missing", "文件不存在", details={"key": key}) from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def check(self) -> None:
        """Raises unless the store's directory exists (or can be made) and is writable."""
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise PermissionError(f"document store {self.root} is not writable")


class S3Store:
    """An S3-compatible bucket (AWS S3, MinIO, Aliyun OSS/Tencent COS in S3 mode)."""

    def __init__(self, *, endpoint_url: str, bucket: str, access_key_id: str, secret_access_key: str,
                 region: str = "us-east-1"):
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.client = boto3.client("s3", endpoint_url=endpoint_url or None, aws_access_key_id=access_key_id,
                                   aws_secret_access_key=secret_access_key, region_name=region,
                                   config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                                 connect_timeout=5, read_timeout=30))

    def put(self, key: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type,
                                   ChecksumAlgorithm="SHA256")
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable("storage_unavailable", "文件存储暂不可用，请稍后重试",
                                     details={"error": type(exc).__name__}) from exc

    def get(self, key: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound("document_missing", "文件不存在", details={"key": key}) from None
            raise ServiceUnavailable("storage_unavailable", "文件存储暂不可用，请稍后重试") from exc
        except BotoCoreError as exc:
            raise ServiceUnavailable("storage_unavailable", "文件存储暂不可用，请稍后重试") from exc

    def check(self) -> None:
        """Raises unless the bucket answers (HEAD bucket)."""
        self.client.head_bucket(Bucket=self.bucket)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError:
            return False


def open_store(settings: Settings) -> DocumentStore:
    if settings.storage_backend == "s3":
        return S3Store(endpoint_url=settings.s3_endpoint_url, bucket=settings.s3_bucket,
                       access_key_id=settings.s3_access_key_id, secret_access_key=settings.s3_secret_access_key)
    return LocalStore(settings.var_dir / "documents")


def store_document(session: Session, store: DocumentStore, *, company_id: str, kind: str, filename: str,
                   content_type: str, data: bytes, created_by: str, case_id: str | None = None,
                   employee_id: str | None = None, meta: dict[str, Any] | None = None) -> Document:
    """Write the bytes, then add the row (flushed, not committed: the caller's transaction decides).

    If the transaction later rolls back, the content-addressed file is an orphan that nothing
    references - never a row pointing at missing bytes.
    """
    if kind not in DOCUMENT_KINDS:
        raise ValueError(f"unknown document kind {kind!r}")
    digest = sha256_hex(data)
    key = document_key(company_id, digest)
    store.put(key, data, content_type)
    doc = Document(company_id=company_id, case_id=case_id, employee_id=employee_id, kind=kind, filename=filename,
                   content_type=content_type, size=len(data), sha256=digest, storage_key=key, meta=meta or {},
                   created_by=created_by)
    session.add(doc)
    session.flush()
    return doc


def read_document(store: DocumentStore, doc: Document, *, verify: bool = True) -> bytes:
    """The document's bytes; with ``verify`` the SHA-256 must match the recorded one."""
    data = store.get(doc.storage_key)
    if verify and sha256_hex(data) != doc.sha256:
        raise ServiceUnavailable("document_corrupted", "文件校验失败", details={"document_id": doc.id})
    return data


def case_documents(session: Session, case_id: str, company_id: str, kind: str | None = None) -> list[Document]:
    q = select(Document).where(Document.case_id == case_id, Document.company_id == company_id)
    if kind:
        q = q.where(Document.kind == kind)
    return list(session.scalars(q.order_by(Document.created_at, Document.id)))
