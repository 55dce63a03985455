"""Documents benchmark: validated intake of N PDFs of 1–5 MB into each object store (the local directory
and S3 on moto's server on loopback, through the minio SDK) versus the raw `put_object` of the same
bytes, in the same run, file by file in turn (the order rotating) so that all see the same machine state. Two intake
figures: the storage path (pypdf checks + sha256 + put) and the engine's `documents.upload` (the same,
plus the document and link rows, the dossier's event and one commit per file, on SQLite). A third, the
check alone (sha256 + pypdf, nothing stored), bounds the ratio: the intake cannot beat its check, however
well the write hides behind it. Prints MB/s and the ratios to raw (target >= 0.8).

    python -m bench.documents [--pdfs 200] [--quick]
"""
from __future__ import annotations

import argparse
import hashlib
import io
import logging
import random
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject, NumberObject

from storage import pdf
from storage.objects import LocalStore, S3Store

MB = 1024 * 1024
VN = ZoneInfo("Asia/Ho_Chi_Minh")


# --- the files --------------------------------------------------------------------------------------

def noise_jpeg(rng: random.Random, width: int = 1000, height: int = 1000) -> bytes:
    """A grey page of noise: JPEG cannot shrink it, so a page costs about 0.7 MB."""
    image = Image.frombytes("L", (width, height), rng.randbytes(width * height))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def scan_pdf(pages: list[bytes], tag: str) -> bytes:
    """A scanned-looking PDF: one full-page JPEG per page (stored as is, DCTDecode) and a line of text."""
    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                                                NameObject("/Subtype"): NameObject("/Type1"),
                                                NameObject("/BaseFont"): NameObject("/Helvetica")}))
    for n, jpeg in enumerate(pages):
        page = writer.add_blank_page(width=595, height=842)
        image = DecodedStreamObject()
        image.set_data(jpeg)
        image.update({NameObject("/Type"): NameObject("/XObject"), NameObject("/Subtype"): NameObject("/Image"),
                      NameObject("/Width"): NumberObject(1000), NameObject("/Height"): NumberObject(1000),
                      NameObject("/ColorSpace"): NameObject("/DeviceGray"),
                      NameObject("/BitsPerComponent"): NumberObject(8), NameObject("/Filter"): NameObject("/DCTDecode")})
        content = DecodedStreamObject()
        content.set_data(f"q 595 0 0 842 0 0 cm /Im0 Do Q BT /F1 9 Tf 20 20 Td ({tag} page {n + 1}) Tj ET".encode())
        page[NameObject("/Resources")] = DictionaryObject({
            NameObject("/XObject"): DictionaryObject({NameObject("/Im0"): writer._add_object(image)}),
            NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
        page[NameObject("/Contents")] = writer._add_object(content)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def corpus(n: int, seed: int = 4) -> list[bytes]:
    """n distinct PDFs of 1–5 MB (each has its own text, so its own hash)."""
    rng = random.Random(seed)
    pool = [noise_jpeg(rng) for _ in range(8)]
    page_size = sum(map(len, pool)) / len(pool)
    files = []
    for i in range(n):
        target = rng.uniform(1, 5) * MB
        pages = [pool[(i + k) % len(pool)] for k in range(max(1, round(target / page_size)))]
        files.append(scan_pdf(pages, f"motcua bench {i} {uuid.uuid4()}"))
    return files


# --- the stores -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[object, str]:
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"127.0.0.1:{port}"


def new_store(kind: str, root: Path, endpoint: str | None):
    if kind == "local":
        return LocalStore(root / uuid.uuid4().hex)
    return S3Store(endpoint, "bench", "bench", f"bench-{uuid.uuid4().hex[:12]}", retries=0).ensure_bucket()


# --- the engine path --------------------------------------------------------------------------------

def engine_setup(data_dir: Path):
    """A SQLite database with the organisation and catalog, and one dossier to file documents to."""
    from datetime import datetime
    from sqlalchemy import select
    from engine import dossiers as cmd
    from engine.catalog import load_catalog
    from engine.config import REPO_ROOT, Settings, set_settings
    from engine.db import session_factory
    from engine.migrate import upgrade
    from engine.models import User
    from engine.org import load_org_dir

    url = f"sqlite:///{data_dir / 'bench.db'}"
    set_settings(Settings(database_url=url, data_dir=data_dir))
    upgrade(url)
    make_session = session_factory(url)
    with make_session() as db:
        load_org_dir(db, REPO_ROOT / "data" / "org")
        load_catalog(db, REPO_ROOT / "bpmn", now=datetime(2018, 1, 1, tzinfo=VN))
        db.commit()
        officer = db.scalar(select(User).where(User.username == "pp.motcua"))
        start = datetime(2025, 4, 24, 9, 0, tzinfo=VN)
        code = cmd.receive(db, actor=officer, procedure_code="2.000815", components=["TP1"], now=start,
                           applicant={"full_name": "Nguyễn Văn An", "citizen_id": "052088004321"}).dossier.code
        db.commit()
    return make_session, officer, code, start


@dataclass
class Figures:
    seconds: float = 0.0

    def mbps(self, total_bytes: int) -> float:
        return total_bytes / MB / self.seconds


def run(kind: str, files: list[bytes], root: Path, endpoint: str | None, with_engine: bool) -> dict[str, Figures]:
    from engine import documents
    raw_store, intake_store, engine_store = (new_store(kind, root, endpoint) for _ in range(3))
    keys = [hashlib.sha256(f).hexdigest() for f in files]        # the raw baseline is given its keys
    figures = {"raw": Figures(), "intake": Figures(), "check": Figures(), "engine": Figures()}
    if with_engine:
        make_session, officer, code, start = engine_setup(root / f"engine-{kind}")

    def raw(i):
        raw_store.put_object(keys[i], files[i])

    def check_upload(data):
        return pdf.check_upload(data, max_bytes=20 * MB, max_pages=500, media_type="application/pdf")

    def intake(i):
        # What engine.documents.upload does with the bytes: validate and store (overlapped on a local store).
        intake_store.put_checked(files[i], check_upload)

    def check(i):
        # The validation alone (sha256 + pypdf), storing nothing: overlapped perfectly with the write, the
        # intake still takes at least this long, so raw / check bounds the ratio.
        check_upload(files[i])

    def engine(i):
        with make_session() as db:
            documents.upload(db, code=code, actor=officer, component="TP2", data=files[i], store=engine_store,
                             now=start + timedelta(seconds=i + 1))
            db.commit()

    steps = [("raw", raw), ("intake", intake), ("check", check)] + ([("engine", engine)] if with_engine else [])
    for i in range(len(files)):
        # The order turns with each file: work a step leaves behind (the in-process S3 server finishing a
        # request, the kernel writing back pages) lands on each figure alike.
        for name, step in steps[i % len(steps):] + steps[:i % len(steps)]:
            t = time.perf_counter()
            step(i)
            figures[name].seconds += time.perf_counter() - t
    return figures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pdfs", type=int, default=200, help="number of PDFs (1–5 MB each)")
    ap.add_argument("--quick", action="store_true", help="10 PDFs, for CI")
    ap.add_argument("--no-engine", action="store_true", help="skip the engine's upload (no database)")
    args = ap.parse_args(argv)
    n = 10 if args.quick else args.pdfs
    if n < 1:
        ap.error("--pdfs must be at least 1")
    files = corpus(n)
    total = sum(map(len, files))
    print(f"{n} PDFs, {total / MB:.0f} MB ({min(map(len, files)) / MB:.1f}–{max(map(len, files)) / MB:.1f} MB each)")
    server, endpoint = start_moto()
    try:
        with tempfile.TemporaryDirectory(prefix="motcua-bench-") as tmp:
            for kind in ("local", "s3"):
                fig = run(kind, files, Path(tmp), endpoint, not args.no_engine)
                raw = fig["raw"].mbps(total)
                print(f"{kind:5} raw put_object   {raw:8.1f} MB/s")
                print(f"{kind:5} validated intake {fig['intake'].mbps(total):8.1f} MB/s   "
                      f"ratio {fig['intake'].mbps(total) / raw:.2f}x (target >= 0.8)")
                print(f"{kind:5} check alone      {fig['check'].mbps(total):8.1f} MB/s   "
                      f"bound {min(1.0, fig['check'].mbps(total) / raw):.2f}x (the ratio if the write hid all else)")
                if not args.no_engine:
                    print(f"{kind:5} engine upload    {fig['engine'].mbps(total):8.1f} MB/s   "
                          f"ratio {fig['engine'].mbps(total) / raw:.2f}x (with rows, event, commit)")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
