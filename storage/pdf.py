"""Intake checks for uploaded documents: PDF, JPEG or PNG; images become one-page PDFs.

Everything is checked on the bytes in memory, before anything is stored. A PDF must parse with pypdf,
be complete (ends with %%EOF), not be encrypted, have a page count within the limit, and carry no
JavaScript, launch or embedded-file actions anywhere reachable from its trailer. Rejections carry an
English code and a Vietnamese message that tells the counter officer what to do."""
from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

MAGIC = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"))
MEDIA_TYPES = {"application/pdf": "pdf", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/png": "png"}
A4_INCHES = (8.27, 11.69)
# Beyond this many objects a PDF of this size is a trap, not a document.
MAX_OBJECTS = 200_000


class Rejected(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Checked:
    """An accepted upload: the PDF bytes to store (converted if an image was given) and what they are."""
    data: bytes
    sha256: str
    size: int
    pages: int
    original_type: str      # pdf | jpeg | png


def sniff(data: bytes) -> str | None:
    # PDF readers accept the header anywhere in the first 1024 bytes; so do we.
    if b"%PDF-" in data[:1024]:
        return "pdf"
    return next((kind for magic, kind in MAGIC if data.startswith(magic)), None)


def check_upload(data: bytes, *, max_bytes: int, max_pages: int, media_type: str | None = None) -> Checked:
    """Validate an upload and return the PDF to store, or raise Rejected."""
    if not data:
        raise Rejected("file_empty", "Tệp rỗng; hãy chọn lại tệp cần tải lên")
    _check_size(len(data), max_bytes)
    declared = None
    if media_type:
        declared = MEDIA_TYPES.get(media_type.split(";")[0].strip().lower())
        if declared is None:
            raise Rejected("file_type_not_allowed", "Chỉ nhận tệp PDF, ảnh JPEG hoặc PNG")
    kind = sniff(data)
    if kind is None:
        if declared in ("jpeg", "png"):
            raise Rejected("image_invalid", f"Tệp không phải ảnh {declared.upper()} hợp lệ; hãy chụp hoặc quét "
                                            "lại giấy tờ và lưu dưới dạng JPEG hoặc PNG")
        raise Rejected("file_type_not_allowed", "Tệp không phải PDF, ảnh JPEG hoặc PNG; hãy quét lại giấy tờ "
                                                "hoặc lưu tệp dưới dạng PDF")
    if declared is not None and (declared == "pdf") != (kind == "pdf"):
        raise Rejected("file_type_mismatch", f"Nội dung tệp ({kind.upper()}) không khớp loại đã khai báo "
                                             f"({declared.upper()}); hãy chọn đúng tệp")
    pdf = data if kind == "pdf" else image_to_pdf(data)
    _check_size(len(pdf), max_bytes)
    # Hashed before parsing: hashing lets go of the GIL, and a store writing the bytes on another thread
    # (LocalStore.put_checked) gets going then.
    sha256 = hashlib.sha256(pdf).hexdigest()
    pages = check_pdf(pdf, max_pages=max_pages)
    return Checked(pdf, sha256, len(pdf), pages, kind)


MIB = 1024 * 1024      # "MB" as people read file sizes: the 20 MB default limit is 20 MiB


def _check_size(size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise Rejected("file_too_large", f"Tệp {size / MIB:.1f} MB vượt giới hạn {max_bytes / MIB:.0f} MB; hãy "
                                         "quét với độ phân giải thấp hơn (200 dpi) hoặc tách thành nhiều tệp")


# --- PDF --------------------------------------------------------------------------------------------

def check_pdf(data: bytes, *, max_pages: int) -> int:
    """The page count of an acceptable PDF; Rejected otherwise."""
    if b"%PDF-" not in data[:1024]:
        raise Rejected("pdf_invalid", "Tệp không phải PDF")
    # pypdf repairs a file cut short where it can; a cut-off upload must be sent again instead.
    if b"%%EOF" not in data[-2048:]:
        raise Rejected("pdf_truncated", "Tệp PDF không trọn vẹn (bị cắt cụt khi lưu hoặc tải lên); hãy lưu lại "
                                        "tệp rồi tải lên lại")
    try:
        reader = PdfReader(_source(data), strict=False)
        if reader.is_encrypted:
            raise Rejected("pdf_encrypted", "Tệp PDF được mã hóa hoặc đặt mật khẩu; hãy gỡ mật khẩu (in lại "
                                            "thành PDF) rồi tải lên lại")
        pages = len(reader.pages)
        _check_objects(reader)
    except Rejected:
        raise
    except Exception as exc:    # pypdf raises many kinds on malformed input; all mean "cannot read"
        raise Rejected("pdf_invalid", f"Tệp PDF bị hỏng, không đọc được ({type(exc).__name__}); hãy xuất "
                                      "lại tệp PDF rồi tải lên") from exc
    if pages == 0:
        raise Rejected("pdf_no_pages", "Tệp PDF không có trang nào")
    if pages > max_pages:
        raise Rejected("pdf_too_many_pages", f"Tệp PDF có {pages} trang, vượt giới hạn {max_pages} trang; hãy "
                                             "tách thành nhiều tệp")
    return pages


def _source(data: bytes) -> io.BufferedReader:
    """The bytes as a file for pypdf, without copying them. pypdf sizes a BytesIO with getbuffer(), which
    makes the BytesIO copy the bytes it was sharing (3 MB for a 3 MB scan, about a fifth of the check's
    time); a buffered reader on top has no getbuffer, so pypdf seeks to the end instead."""
    return io.BufferedReader(io.BytesIO(data))


# Keys and action types that run code or carry other files. Checked on every dictionary, wherever it
# sits (catalog, pages, annotations, form fields, name trees), so no place to hide them is missed.
FORBIDDEN = (
    ("/JS", "pdf_javascript"), ("/JavaScript", "pdf_javascript"), ("/XFA", "pdf_javascript"),
    ("/EmbeddedFiles", "pdf_embedded_file"), ("/EF", "pdf_embedded_file"),
)
FORBIDDEN_ACTIONS = {"/JavaScript": "pdf_javascript", "/Launch": "pdf_launch_action",
                     "/ImportData": "pdf_launch_action", "/GoToE": "pdf_embedded_file",
                     "/RichMediaExecute": "pdf_javascript"}
MESSAGES = {
    "pdf_javascript": "Tệp PDF chứa mã lệnh JavaScript (hoặc biểu mẫu XFA)",
    "pdf_launch_action": "Tệp PDF chứa lệnh mở chương trình hoặc tệp bên ngoài (Launch)",
    "pdf_embedded_file": "Tệp PDF có tệp đính kèm nhúng bên trong",
}


def _check_objects(reader: PdfReader) -> None:
    """Walk every object reachable from the trailer once; stream contents are not decoded."""
    seen: set[tuple[int, int]] = set()
    stack: list = [reader.trailer]
    while stack:
        obj = stack.pop()
        if isinstance(obj, IndirectObject):
            ref = (obj.idnum, obj.generation)
            if ref in seen:
                continue
            seen.add(ref)
            if len(seen) > MAX_OBJECTS:
                raise Rejected("pdf_too_complex", "Tệp PDF quá phức tạp (quá nhiều đối tượng); hãy in lại thành PDF")
            obj = obj.get_object()
        if isinstance(obj, DictionaryObject):           # streams are dictionaries too
            _check_dictionary(obj)
            stack.extend(dict.values(obj))              # raw values: references stay unresolved
        elif isinstance(obj, ArrayObject):
            stack.extend(list.__iter__(obj))


def _check_dictionary(d: DictionaryObject) -> None:
    for key, code in FORBIDDEN:
        if key in d:
            _reject(code)
    action = _resolved(d, "/S")
    if isinstance(action, str) and action in FORBIDDEN_ACTIONS:
        _reject(FORBIDDEN_ACTIONS[action])
    if _resolved(d, "/Type") == "/EmbeddedFile":
        _reject("pdf_embedded_file")


def _resolved(d: DictionaryObject, key: str):
    # A name may sit behind an indirect reference; a viewer follows it, so must we.
    value = dict.get(d, key)
    return value.get_object() if isinstance(value, IndirectObject) else value


def _reject(code: str) -> None:
    raise Rejected(code, f"{MESSAGES[code]}: không được nhận vì lý do an toàn; hãy in lại thành PDF (Print to PDF) "
                         "hoặc quét lại giấy tờ rồi tải lên")


# --- images -----------------------------------------------------------------------------------------

def image_to_pdf(data: bytes) -> bytes:
    """A JPEG or PNG as a one-page PDF, the page no larger than A4 (the image fills it at its aspect)."""
    try:
        with warnings.catch_warnings():
            # A huge pixel count in a small file is a decompression bomb, not a scan.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            Image.open(io.BytesIO(data)).verify()     # verify() checks the file, then the image is unusable
            image = Image.open(io.BytesIO(data))
            image.load()
    except Exception as exc:    # Pillow raises OSError, SyntaxError, ValueError, bomb errors...
        raise Rejected("image_invalid", "Ảnh bị hỏng hoặc không đọc được; hãy chụp hoặc quét lại giấy tờ và "
                                        "lưu dưới dạng JPEG hoặc PNG") from exc
    image = ImageOps.exif_transpose(image)           # phone photos keep their rotation in EXIF
    if image.mode not in ("RGB", "L", "CMYK"):
        image = _flatten(image)
    width, height = image.size
    resolution = max(width / A4_INCHES[0], height / A4_INCHES[1], 1.0)
    out = io.BytesIO()
    image.save(out, "PDF", resolution=resolution, quality=92)
    return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """Transparency onto white paper; palettes and 16-bit modes to RGB."""
    if image.mode in ("RGBA", "LA", "P", "PA"):
        rgba = image.convert("RGBA")
        paper = Image.new("RGB", rgba.size, "white")
        paper.paste(rgba, mask=rgba.getchannel("A"))
        return paper
    return image.convert("RGB")
