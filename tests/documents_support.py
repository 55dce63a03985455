"""What the document tests share: S3 stores on a loopback server, and a corpus of good and bad files
made on the spot with reportlab, pypdf and Pillow. (The fixtures are in tests/documents_fixtures.py.)"""
from __future__ import annotations

import io
import socket
import uuid

from PIL import Image
from pypdf import PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, FloatObject, NameObject, TextStringObject
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from storage.objects import S3Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3_store(endpoint: str) -> S3Store:
    """A store on a bucket of its own (created, with default encryption, as at start-up)."""
    return S3Store(endpoint, "testing", "testing", f"motcua-{uuid.uuid4().hex[:12]}", retries=0).ensure_bucket()


# --- the corpus ---------------------------------------------------------------------------------------

def make_pdf(pages: int = 1, text: str = "Tờ khai đăng ký khai sinh") -> bytes:
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, invariant=1)
    for n in range(pages):
        c.drawString(72, 750, f"{text.encode('ascii', 'replace').decode()} - page {n + 1}")
        c.showPage()
    c.save()
    return out.getvalue()


def _writer(base: bytes | None = None) -> PdfWriter:
    return PdfWriter(clone_from=io.BytesIO(base or make_pdf()))


def _bytes(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def javascript_pdf() -> bytes:
    """A document-level script: /Names /JavaScript in the catalog, run when the file opens."""
    w = _writer()
    action = DictionaryObject({NameObject("/Type"): NameObject("/Action"), NameObject("/S"): NameObject("/JavaScript"),
                               NameObject("/JS"): TextStringObject("app.alert('xin chao');")})
    tree = DictionaryObject({NameObject("/Names"): ArrayObject([TextStringObject("chao"), w._add_object(action)])})
    w._root_object[NameObject("/Names")] = DictionaryObject({NameObject("/JavaScript"): w._add_object(tree)})
    return _bytes(w)


def launch_pdf(indirect_name: bool = False) -> bytes:
    """/OpenAction /Launch; with indirect_name the /S name sits behind a reference."""
    w = _writer()
    name = NameObject("/Launch")
    action = DictionaryObject({NameObject("/Type"): NameObject("/Action"),
                               NameObject("/S"): w._add_object(name) if indirect_name else name,
                               NameObject("/F"): TextStringObject("cmd.exe")})
    w._root_object[NameObject("/OpenAction")] = w._add_object(action)
    return _bytes(w)


def link_javascript_pdf() -> bytes:
    """A link annotation whose action is JavaScript (no document-level script)."""
    w = _writer()
    action = DictionaryObject({NameObject("/S"): NameObject("/JavaScript"),
                               NameObject("/JS"): TextStringObject("this.print();")})
    annot = DictionaryObject({NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Link"),
                              NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (0, 0, 100, 100)]),
                              NameObject("/A"): action})
    w.pages[0][NameObject("/Annots")] = ArrayObject([w._add_object(annot)])
    return _bytes(w)


def embedded_file_pdf() -> bytes:
    w = _writer()
    w.add_attachment("virus.exe", b"MZ\x90\x00")
    return _bytes(w)


def encrypted_pdf(user_password: str = "mat-khau") -> bytes:
    w = _writer()
    w.encrypt(user_password=user_password, owner_password="chu-so-huu")
    return _bytes(w)


def no_pages_pdf() -> bytes:
    return _bytes(PdfWriter())


def jpeg(size=(1240, 1754), color=(200, 220, 240), exif_orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGB", size, color)
    exif = image.getexif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    image.save(out, "JPEG", quality=85, exif=exif)
    return out.getvalue()


def png(size=(800, 600), mode="RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 20, 30, 128) if mode == "RGBA" else 128).save(out, "PNG")
    return out.getvalue()
