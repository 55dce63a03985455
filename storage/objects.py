"""Object stores: content-addressed, immutable objects behind one interface.

An object's key is the sha256 of its bytes (64 hex digits), so the same bytes are stored once and any
object can be checked against its own name. Two implementations:
- `S3Store`: MinIO or any S3-protocol server, through the minio SDK (production);
- `LocalStore`: a directory (the embedded default).

`put` refreshes the modification time of an object that is already there: the orphan collector only
removes unreferenced objects older than a grace period, and a fresh time protects an object that a
transaction is about to reference. This module knows nothing of dossiers or the database."""
from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterator, Protocol, TypeVar

import urllib3
from minio import Minio
from minio.error import MinioException, S3Error
from minio.sseconfig import Rule, SSEConfig

KEY = re.compile(r"^[0-9a-f]{64}$")
Checked = TypeVar("Checked")        # what a check returns: an object with the `.data` to keep and its `.sha256`


class StoreUnavailable(Exception):
    """The object store could not be reached, or refused the operation."""


class ObjectNotFound(KeyError):
    """No object under that key."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime      # aware, UTC


def content_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_key(key: str) -> str:
    # Keys become file names and object names: only a content hash is accepted.
    if not KEY.match(key):
        raise ValueError(f"not a content key: {key!r}")
    return key


class ObjectStore(Protocol):
    kind: str

    def put(self, data: bytes, key: str | None = None) -> str:
        """Store the bytes under their sha256 (given or computed); return the key."""

    def put_object(self, key: str, data: bytes) -> None:
        """The raw write of bytes under a key, without any check (the benchmark's baseline)."""

    def put_checked(self, data: bytes, check: Callable[[bytes], Checked]) -> Checked:
        """Store what `check(data)` keeps (its `.data` under its `.sha256`); nothing appears under a key
        when the check raises, and the exception is passed on."""

    def get(self, key: str) -> bytes: ...

    def stat(self, key: str) -> ObjectInfo | None: ...

    def delete(self, key: str) -> None: ...

    def list(self) -> Iterator[ObjectInfo]: ...

    def download_url(self, key: str, *, filename: str, expires: timedelta,
                     now: datetime | None = None) -> str | None:
        """A short-lived URL the client downloads from directly; None when the application must serve
        the bytes itself."""


# --- local directory --------------------------------------------------------------------------------

# Staged writes of LocalStore.put_checked; a few threads, as a few requests upload at once.
_WRITERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="motcua-store")


# Opened with O_DSYNC, a file's write returns once its bytes (and size) are on disk: the copy and the sync
# are one system call, run entirely without the GIL beside the check. Where the flag is missing, the
# caller syncs after the write.
_DSYNC = getattr(os, "O_DSYNC", 0)


def _write_all(fd: int, data: bytes) -> None:
    """Write all the bytes to an open file; one system call as a rule, which lets go of the GIL."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write_durably(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore:
    """Objects as files `<root>/<first two hex digits>/<key>`, written atomically and durably."""
    kind = "local"

    def __init__(self, root: Path):
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(f"cannot create {self.root}: {exc}") from exc

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)[:2] / key

    def put(self, data: bytes, key: str | None = None) -> str:
        key = key or content_key(data)
        path = self._path(key)
        try:
            if path.exists():
                os.utime(path)          # stored once; the fresh time keeps gc away (module docstring)
            else:
                self.put_object(key, data)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write {path}: {exc}") from exc
        return key

    def put_checked(self, data: bytes, check: Callable[[bytes], Checked]) -> Checked:
        """The bytes are written and synced to `.staging/` on a thread while `check` parses them on this
        one, so the disk write and the validation overlap (a file write releases the GIL); the staged file
        takes its content key only once the check has passed. A crash leaves at most a staged file,
        which `sweep_staging` removes; a refused file is removed at once."""
        staging = self.root / ".staging"
        tmp = staging / f"{uuid.uuid4().hex}.tmp"
        try:
            staging.mkdir(exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _DSYNC, 0o644)
        except OSError as exc:
            raise StoreUnavailable(f"cannot write in {staging}: {exc}") from exc
        written = _WRITERS.submit(_write_all, fd, data)
        try:
            checked = check(data)
        except BaseException:
            written.exception()                 # wait for the write, whatever became of it
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        try:
            try:
                written.result()
                if not _DSYNC:
                    os.fsync(fd)
            finally:
                os.close(fd)
            if checked.data is not data:        # an image became a PDF: keep the PDF, not what was staged
                tmp.unlink()
                self.put(checked.data, checked.sha256)
            else:
                self._promote(tmp, checked.sha256)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StoreUnavailable(f"cannot write object {checked.sha256}: {exc}") from exc
        return checked

    def _promote(self, tmp: Path, key: str) -> None:
        path = self._path(key)
        if path.exists():
            os.utime(path)                      # stored once (module docstring)
            tmp.unlink()
            return
        path.parent.mkdir(exist_ok=True)
        os.replace(tmp, path)
        _sync_directory(path.parent)

    def sweep_staging(self, older_than: datetime) -> int:
        """Remove staged files left by a crash before `older_than`; returns how many."""
        removed = 0
        for tmp in (self.root / ".staging").glob("*.tmp"):
            try:
                if datetime.fromtimestamp(tmp.stat().st_mtime, timezone.utc) < older_than:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
        return removed

    def put_object(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(exist_ok=True)
        # Write a temporary file and rename it: a reader never sees half an object, and a crash leaves
        # at most a temporary file, never a wrong object under a content key.
        tmp = path.parent / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            _write_durably(tmp, data)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        # The rename is durable only once the directory is synced; the database row that refers to the
        # object is committed after this returns.
        _sync_directory(path.parent)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise StoreUnavailable(f"cannot read object {key}: {exc}") from exc

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self) -> Iterator[ObjectInfo]:
        for sub in sorted(self.root.iterdir()):
            if not (sub.is_dir() and len(sub.name) == 2):
                continue
            for path in sorted(sub.iterdir()):
                if KEY.match(path.name):
                    st = path.stat()
                    yield ObjectInfo(path.name, st.st_size, datetime.fromtimestamp(st.st_mtime, timezone.utc))

    def download_url(self, key: str, *, filename: str, expires: timedelta,
                     now: datetime | None = None) -> str | None:
        return None


# --- S3 protocol (MinIO) ----------------------------------------------------------------------------

class S3Store:
    """Objects `sha256/<key>` in one bucket. `ensure_bucket()` (called at start-up) creates the bucket
    and asks for server-side encryption by default; servers without a KMS refuse, and then objects are
    stored unencrypted (`encrypted` says which)."""
    kind = "s3"
    PREFIX = "sha256/"

    def __init__(self, endpoint: str, access_key: str | None, secret_key: str | None, bucket: str, *,
                 secure: bool = False, region: str = "us-east-1", timeout: float = 10.0, retries: int = 2):
        if "://" in endpoint:             # accept http://host:port as well as host:port
            scheme, endpoint = endpoint.split("://", 1)
            secure = scheme == "https"
        endpoint = endpoint.rstrip("/")
        # Bounded time and retries: an unreachable store must fail an intake quickly, not hang it.
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout), maxsize=10,
            retries=urllib3.Retry(total=retries, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]))
        # The region is given so that presigning needs no round trip to look it up.
        self.client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                            region=region, http_client=http)
        self.bucket = bucket
        self.endpoint = endpoint
        self.encrypted = False

    def _name(self, key: str) -> str:
        return self.PREFIX + _check_key(key)

    @contextmanager
    def _calls(self, what: str):
        try:
            yield
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise ObjectNotFound(what) from exc
            raise StoreUnavailable(f"{self.endpoint}/{self.bucket}: {what}: {exc.code}: {exc.message}") from exc
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(f"{self.endpoint}/{self.bucket}: {what}: {exc}") from exc

    def ensure_bucket(self) -> S3Store:
        with self._calls("create bucket"):
            if not self.client.bucket_exists(self.bucket):
                self.client.make_bucket(self.bucket)
        try:
            if self.client.get_bucket_encryption(self.bucket) is None:
                self.client.set_bucket_encryption(self.bucket, SSEConfig(Rule.new_sse_s3_rule()))
            self.encrypted = True
        except S3Error:
            self.encrypted = False     # e.g. MinIO without a KMS: keep going, unencrypted at rest
        except (MinioException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise StoreUnavailable(f"{self.endpoint}/{self.bucket}: encryption: {exc}") from exc
        return self

    def put(self, data: bytes, key: str | None = None) -> str:
        # Always written, even when present: the same bytes under the same key are still one object,
        # and the write refreshes its time (module docstring). Re-uploads of identical bytes are rare:
        # reuse goes by reference.
        key = key or content_key(data)
        self.put_object(key, data)
        return key

    def put_checked(self, data: bytes, check: Callable[[bytes], Checked]) -> Checked:
        # Checked first, then sent: an object put on a content key cannot be taken back safely (the same
        # bytes may already be another document's).
        checked = check(data)
        self.put(checked.data, checked.sha256)
        return checked

    def put_object(self, key: str, data: bytes) -> None:
        with self._calls(f"put {key}"):
            self.client.put_object(self.bucket, self._name(key), io.BytesIO(data), len(data),
                                   content_type="application/pdf")

    def get(self, key: str) -> bytes:
        with self._calls(f"get {key}"):
            response = self.client.get_object(self.bucket, self._name(key))
            try:
                return response.read()
            finally:
                response.close()
                response.release_conn()

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            with self._calls(f"stat {key}"):
                obj = self.client.stat_object(self.bucket, self._name(key))
        except ObjectNotFound:
            return None
        return ObjectInfo(key, obj.size, obj.last_modified)

    def delete(self, key: str) -> None:
        with self._calls(f"delete {key}"):
            self.client.remove_object(self.bucket, self._name(key))

    def list(self) -> Iterator[ObjectInfo]:
        with self._calls("list"):
            for obj in self.client.list_objects(self.bucket, prefix=self.PREFIX, recursive=True):
                key = obj.object_name[len(self.PREFIX):]
                if KEY.match(key):
                    yield ObjectInfo(key, obj.size, obj.last_modified)

    def download_url(self, key: str, *, filename: str, expires: timedelta,
                     now: datetime | None = None) -> str | None:
        safe = re.sub(r'[^A-Za-z0-9._-]', "_", filename)
        with self._calls(f"presign {key}"):
            return self.client.presigned_get_object(
                self.bucket, self._name(key), expires=expires, request_date=now,
                response_headers={"response-content-type": "application/pdf",
                                  "response-content-disposition": f'attachment; filename="{safe}"'})


# --- choice by configuration ------------------------------------------------------------------------

def store_from_settings(s) -> ObjectStore:
    """S3Store when `s.s3_endpoint` is set (bucket ensured now, at start-up), else a LocalStore under
    `s.data_dir/objects`. `s` is any object with the MOTCUA_* settings' attribute names."""
    if s.s3_endpoint:
        return S3Store(s.s3_endpoint, s.s3_access_key, s.s3_secret_key, s.s3_bucket, secure=s.s3_secure,
                       region=s.s3_region, timeout=s.s3_timeout_seconds, retries=s.s3_retries).ensure_bucket()
    return LocalStore(Path(s.data_dir) / "objects")
