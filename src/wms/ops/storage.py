"""Where backups and archives go: a local directory or an S3-compatible bucket prefix.

``s3://bucket/prefix`` takes its endpoint from ``WMS_S3_ENDPOINT_URL`` (unset: AWS) and
its credentials from the standard AWS variables (``AWS_ACCESS_KEY_ID``, ...,
``AWS_DEFAULT_REGION``) or an instance role. Every failure is a ``StorageError`` with
one line naming the location, never the credentials.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

ENDPOINT_ENV = "WMS_S3_ENDPOINT_URL"
_CHUNK = 1 << 20


class StorageError(RuntimeError):
    """A backup or archive location could not be read or written."""


class LocationError(ValueError):
    """A location is not a directory path or an ``s3://bucket/prefix`` URL."""


class Store(Protocol):
    """A flat namespace of files under one location."""

    def describe(self) -> str:
        """The location as the user wrote it, for messages."""

    def exists(self, name: str) -> bool:
        """True when ``name`` is stored."""

    def put(self, local: Path, name: str) -> None:
        """Store the local file ``local`` as ``name`` (replacing it)."""

    def get(self, name: str, local: Path) -> None:
        """Copy ``name`` to the local file ``local``; StorageError when it is missing."""

    def read_text(self, name: str) -> str:
        """The content of ``name`` as UTF-8 text."""


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def open_store(location: str) -> Store:
    """The store of ``location``: ``s3://bucket/prefix`` or a directory path."""
    if "://" in location:
        parsed = urlparse(location)
        if parsed.scheme != "s3":
            raise LocationError(
                f"{location!r}: only directory paths and s3://bucket/prefix URLs are supported"
            )
        if not parsed.netloc:
            raise LocationError(f"{location!r}: an S3 URL needs a bucket (s3://bucket/prefix)")
        if parsed.query or parsed.fragment:
            raise LocationError(f"{location!r}: an S3 URL takes no query or fragment")
        return S3Store(parsed.netloc, parsed.path.strip("/"))
    if not location.strip():
        raise LocationError("an empty location was given")
    return DirectoryStore(Path(location))


@dataclass
class DirectoryStore:
    """Files in a local directory (created on the first write)."""

    root: Path

    def describe(self) -> str:
        """The directory."""
        return str(self.root)

    def exists(self, name: str) -> bool:
        """True when the file exists."""
        return (self.root / name).is_file()

    def put(self, local: Path, name: str) -> None:
        """Copy then rename, so a reader never sees a half-written file."""
        target = self.root / name
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            shutil.copyfile(local, partial)
            with partial.open("rb") as handle:
                os.fsync(handle.fileno())
            partial.replace(target)
        except OSError as exc:
            raise StorageError(f"cannot write {target}: {exc.strerror or exc}") from None

    def get(self, name: str, local: Path) -> None:
        """Copy the file out."""
        source = self.root / name
        try:
            shutil.copyfile(source, local)
        except FileNotFoundError:
            raise StorageError(f"{source} does not exist") from None
        except OSError as exc:
            raise StorageError(f"cannot read {source}: {exc.strerror or exc}") from None

    def read_text(self, name: str) -> str:
        """The file's text."""
        source = self.root / name
        try:
            return source.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StorageError(f"{source} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise StorageError(f"cannot read {source}: {exc}") from None


class S3Store:
    """Objects under ``s3://bucket/prefix`` of an S3-compatible service."""

    def __init__(self, bucket: str, prefix: str) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self._client: Any = None

    def describe(self) -> str:
        """The URL."""
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def client(self) -> Any:
        """A boto3 S3 client (endpoint from WMS_S3_ENDPOINT_URL), made on first use."""
        if self._client is None:
            import boto3  # type: ignore[import-untyped]  # noqa: PLC0415 - only S3 needs it
            from botocore.config import Config  # type: ignore[import-untyped]  # noqa: PLC0415

            # Few retries and short connect timeouts: an unreachable endpoint should fail
            # in seconds with one line, not hang the command for minutes.
            config = Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
            )
            self._client = boto3.client(
                "s3", endpoint_url=os.environ.get(ENDPOINT_ENV) or None, config=config
            )
        return self._client

    def _fail(self, action: str, name: str, exc: Exception) -> StorageError:
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]  # noqa: PLC0415

        where = f"s3://{self.bucket}/{self._key(name)}"
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = error.get("Code", "error")
            message = error.get("Message") or code
            if code in {"404", "NoSuchKey"}:
                return StorageError(f"{where} does not exist")
            return StorageError(f"cannot {action} {where}: {code}: {message}")
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return StorageError(f"cannot {action} {where}: {text}")

    def exists(self, name: str) -> bool:
        """HEAD the object."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            self.client().head_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return False
            raise self._fail("read", name, exc) from None
        except BotoCoreError as exc:
            raise self._fail("read", name, exc) from None
        return True

    def put(self, local: Path, name: str) -> None:
        """Upload (multipart above 8 MiB, as boto3's transfer manager does)."""
        from boto3.exceptions import S3UploadFailedError  # type: ignore[import-untyped]  # noqa: PLC0415
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            self.client().upload_file(str(local), self.bucket, self._key(name))
        except (ClientError, BotoCoreError, S3UploadFailedError) as exc:
            raise self._fail("write", name, exc) from None

    def get(self, name: str, local: Path) -> None:
        """Download to ``local``."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            self.client().download_file(self.bucket, self._key(name), str(local))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("read", name, exc) from None

    def read_text(self, name: str) -> str:
        """GET the object as text."""
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        try:
            body = self.client().get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
            return str(body.read().decode("utf-8"))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("read", name, exc) from None
        except UnicodeDecodeError as exc:
            raise self._fail("read", name, exc) from None
