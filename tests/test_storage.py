"""Object stores: the same tests on the local directory and on a real S3-protocol server on loopback
(moto's, through the minio SDK)."""
from __future__ import annotations

import fcntl
import hashlib
import os
import urllib.request
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from storage.objects import LocalStore, ObjectNotFound, S3Store, StoreUnavailable, store_from_settings
from tests.documents_support import free_port, s3_store

# The fixtures any_store, local_store and moto_endpoint.
pytest_plugins = ["tests.documents_fixtures"]

DATA = b"%PDF-1.4 hello\n%%EOF\n"
KEY = hashlib.sha256(DATA).hexdigest()


def test_put_get_by_content_key(any_store):
    assert any_store.put(DATA) == KEY
    assert any_store.get(KEY) == DATA
    info = any_store.stat(KEY)
    assert info.size == len(DATA) and info.modified.tzinfo is not None


def test_same_bytes_are_stored_once(any_store):
    assert any_store.put(DATA) == any_store.put(DATA, KEY) == KEY
    other = any_store.put(b"%PDF-1.4 other\n%%EOF\n")
    assert sorted(i.key for i in any_store.list()) == sorted([KEY, other])


def test_missing_objects_and_delete(any_store):
    assert any_store.stat(KEY) is None
    with pytest.raises(ObjectNotFound):
        any_store.get(KEY)
    any_store.put(DATA)
    any_store.delete(KEY)
    assert any_store.stat(KEY) is None and list(any_store.list()) == []


def test_only_content_keys_are_accepted(any_store):
    for bad in ("../../etc/passwd", "ABC", KEY.upper(), KEY + "0"):
        with pytest.raises(ValueError):
            any_store.get(bad)


def test_local_put_refreshes_the_time_of_an_existing_object(local_store):
    local_store.put(DATA)
    path = local_store.root / KEY[:2] / KEY
    old = datetime(2020, 1, 1, tzinfo=timezone.utc).timestamp()
    os.utime(path, (old, old))
    local_store.put(DATA)
    assert local_store.stat(KEY).modified > datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert [p.name for p in path.parent.iterdir()] == [KEY]        # no temporary file left behind
    assert local_store.download_url(KEY, filename="x.pdf", expires=timedelta(minutes=5)) is None


def _kept(data: bytes) -> SimpleNamespace:
    """A check that accepts the bytes as they are (what storage.pdf.check_upload does with a PDF)."""
    return SimpleNamespace(data=data, sha256=hashlib.sha256(data).hexdigest())


def _refused(data: bytes):
    raise ValueError("not acceptable")


def test_put_checked_stores_what_the_check_keeps(any_store):
    checked = any_store.put_checked(DATA, _kept)
    assert checked.sha256 == KEY and any_store.get(KEY) == DATA
    any_store.put_checked(DATA, _kept)                                   # the same bytes: still one object
    assert [i.key for i in any_store.list()] == [KEY]
    converted = any_store.put_checked(b"\x89PNG not a pdf", lambda raw: _kept(DATA + b"converted"))
    assert any_store.get(converted.sha256) == DATA + b"converted"       # the PDF made of an image, not the image
    assert sorted(i.key for i in any_store.list()) == sorted([KEY, converted.sha256])


def test_put_checked_leaves_nothing_when_the_check_refuses(any_store):
    with pytest.raises(ValueError):
        any_store.put_checked(DATA, _refused)
    assert list(any_store.list()) == []
    if isinstance(any_store, LocalStore):
        assert list((any_store.root / ".staging").iterdir()) == []      # the staged copy went too


def test_local_put_checked_gives_the_key_only_after_the_check(local_store):
    """The bytes are written aside while the check runs; the object takes its key only once it returns."""
    seen = {}

    def check(data):
        seen["object during check"] = local_store.stat(KEY)
        return _kept(data)
    local_store.put_checked(DATA, check)
    assert seen["object during check"] is None
    assert local_store.get(KEY) == DATA and list((local_store.root / ".staging").iterdir()) == []


@pytest.mark.parametrize("dsync", [True, False], ids=["O_DSYNC", "no O_DSYNC"])
def test_local_put_checked_syncs_the_bytes_before_they_take_their_key(local_store, monkeypatch, dsync):
    """The staged write is durable before the rename: written on a file opened O_DSYNC, or fsynced after
    the write where the platform has no such flag."""
    from storage import objects
    events = []
    write_all, fsync = objects._write_all, os.fsync
    monkeypatch.setattr(objects, "_DSYNC", os.O_DSYNC if dsync else 0)
    monkeypatch.setattr(objects, "_write_all", lambda fd, data: (
        events.append(("write", bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DSYNC))), write_all(fd, data)))
    monkeypatch.setattr(objects.os, "fsync", lambda fd: (events.append(("fsync", local_store.stat(KEY))), fsync(fd)))
    local_store.put_checked(DATA, _kept)
    staged_sync = [("write", True)] if dsync else [("write", False), ("fsync", None)]
    assert events[:len(staged_sync)] == staged_sync          # then only the directory's sync, after the rename
    assert all(kind == "fsync" and obj is not None for kind, obj in events[len(staged_sync):])
    assert local_store.get(KEY) == DATA


def test_local_staged_files_of_a_crash_are_swept_after_the_grace(local_store):
    staging = local_store.root / ".staging"
    staging.mkdir()
    old, new = staging / "old.tmp", staging / "new.tmp"
    old.write_bytes(DATA)
    new.write_bytes(DATA)
    long_ago = datetime(2020, 1, 1, tzinfo=timezone.utc).timestamp()
    os.utime(old, (long_ago, long_ago))
    assert local_store.sweep_staging(datetime.now(timezone.utc) - timedelta(hours=1)) == 1
    assert [p.name for p in staging.iterdir()] == ["new.tmp"]
    assert list(local_store.list()) == []                               # staging is never listed as objects


def test_local_put_checked_reports_a_store_it_cannot_write(local_store):
    (local_store.root / ".staging").write_bytes(b"")     # a file where the staging directory should be
    with pytest.raises(StoreUnavailable):
        local_store.put_checked(DATA, _kept)
    assert list(local_store.list()) == []


def test_s3_bucket_is_created_encrypted_at_start_up(moto_endpoint):
    store = s3_store(moto_endpoint)
    assert store.client.bucket_exists(store.bucket)
    assert store.encrypted
    assert store.client.get_bucket_encryption(store.bucket).rule.sse_algorithm == "AES256"
    store.put(DATA)
    assert store.client.stat_object(store.bucket, "sha256/" + KEY).metadata["x-amz-server-side-encryption"] == "AES256"
    store.ensure_bucket()          # again at the next start-up: nothing to do, no error


def test_s3_presigned_download(moto_endpoint):
    store = s3_store(moto_endpoint)
    store.put(DATA)
    url = store.download_url(KEY, filename="000.35.08.X01-250424-0001-KQ1.pdf", expires=timedelta(seconds=300))
    assert "X-Amz-Expires=300" in url and url.startswith(f"http://{moto_endpoint}/")
    with urllib.request.urlopen(url) as response:
        assert response.read() == DATA
        assert "000.35.08.X01-250424-0001-KQ1.pdf" in response.headers["Content-Disposition"]


def test_s3_unreachable_fails_quickly_and_cleanly():
    store = S3Store(f"127.0.0.1:{free_port()}", "testing", "testing", "motcua-down", retries=0, timeout=2)
    with pytest.raises(StoreUnavailable):
        store.put(DATA)
    with pytest.raises(StoreUnavailable):
        store.ensure_bucket()
    with pytest.raises(StoreUnavailable):
        list(store.list())


def test_store_chosen_by_configuration(tmp_path, moto_endpoint):
    base = dict(data_dir=tmp_path, s3_endpoint=None, s3_access_key=None, s3_secret_key=None, s3_bucket="motcua-cfg",
                s3_secure=False, s3_region="us-east-1", s3_timeout_seconds=5.0, s3_retries=0)
    local = store_from_settings(SimpleNamespace(**base))
    assert isinstance(local, LocalStore) and local.root == tmp_path / "objects"
    s3 = store_from_settings(SimpleNamespace(**base | {"s3_endpoint": f"http://{moto_endpoint}",
                                                       "s3_access_key": "testing", "s3_secret_key": "testing"}))
    assert isinstance(s3, S3Store) and s3.client.bucket_exists("motcua-cfg")
