"""Upload checks (storage.pdf) against a corpus of good and bad files made by the tests."""
from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image
from pypdf import PdfReader

from storage import pdf
from tests.documents_support import (embedded_file_pdf, encrypted_pdf, javascript_pdf, jpeg, launch_pdf,
                                     link_javascript_pdf, make_pdf, no_pages_pdf, png)

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pages": 50}


def check(data: bytes, **kw) -> pdf.Checked:
    return pdf.check_upload(data, **(LIMITS | kw))


def rejected(data: bytes, **kw) -> pdf.Rejected:
    with pytest.raises(pdf.Rejected) as exc:
        check(data, **kw)
    assert exc.value.message and not exc.value.message.isascii()    # Vietnamese, for the counter officer
    return exc.value


def test_a_good_pdf_is_kept_as_is():
    data = make_pdf(pages=3)
    checked = check(data, media_type="application/pdf")
    assert checked.data == data
    assert (checked.pages, checked.size, checked.original_type) == (3, len(data), "pdf")
    assert checked.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("make, code", [
    (javascript_pdf, "pdf_javascript"),
    (link_javascript_pdf, "pdf_javascript"),
    (launch_pdf, "pdf_launch_action"),
    (lambda: launch_pdf(indirect_name=True), "pdf_launch_action"),
    (embedded_file_pdf, "pdf_embedded_file"),
    (encrypted_pdf, "pdf_encrypted"),
    (lambda: encrypted_pdf(user_password=""), "pdf_encrypted"),      # opens without a password, still refused
    (no_pages_pdf, "pdf_no_pages"),
], ids=["javascript", "link-javascript", "launch", "launch-indirect-name", "embedded-file", "encrypted",
        "encrypted-owner-only", "no-pages"])
def test_dangerous_or_unusable_pdfs_are_refused(make, code):
    assert rejected(make()).code == code


def test_truncated_pdfs_are_refused():
    data = make_pdf(pages=2)
    assert rejected(data[: len(data) // 2]).code == "pdf_truncated"
    # Cut in the middle but with the end kept: the cross-reference no longer matches.
    assert rejected(data[: len(data) // 2] + data[-40:]).code == "pdf_invalid"


def test_not_a_pdf_nor_an_image():
    assert rejected(b"Xin chao, day khong phai PDF").code == "file_type_not_allowed"
    assert rejected(b"").code == "file_empty"
    assert rejected(make_pdf(), media_type="application/zip").code == "file_type_not_allowed"


def test_size_and_page_limits():
    data = make_pdf(pages=5)
    err = rejected(data, max_bytes=len(data) - 1)
    assert err.code == "file_too_large" and "MB" in err.message
    assert rejected(data, max_pages=4).code == "pdf_too_many_pages"
    assert check(data, max_pages=5).pages == 5


def test_images_become_one_page_pdfs_no_larger_than_a4():
    for data, kind in ((jpeg(), "jpeg"), (png(), "png"), (png(mode="L"), "png")):
        checked = check(data, media_type=f"image/{kind}")
        page = PdfReader(io.BytesIO(checked.data)).pages[0]
        assert checked.original_type == kind and checked.pages == 1
        assert checked.sha256 == hashlib.sha256(checked.data).hexdigest()
        width, height = float(page.mediabox.width), float(page.mediabox.height)
        assert width <= 8.27 * 72 + 1 and height <= 11.69 * 72 + 1
        assert max(width / (8.27 * 72), height / (11.69 * 72)) > 0.99      # fills A4 one way


def test_phone_photos_are_turned_upright():
    # 200x100 pixels, EXIF "rotate 90° clockwise to display": the page is portrait.
    page = PdfReader(io.BytesIO(check(jpeg((200, 100), exif_orientation=6)).data)).pages[0]
    assert float(page.mediabox.height) > float(page.mediabox.width)


def test_images_that_are_not_images():
    assert rejected(b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 20).code == "image_invalid"
    assert rejected(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40).code == "image_invalid"
    assert rejected(b"just text", media_type="image/png").code == "image_invalid"
    assert rejected(png(), media_type="application/pdf").code == "file_type_mismatch"
    assert rejected(make_pdf(), media_type="image/jpeg").code == "file_type_mismatch"


def test_decompression_bombs_are_refused():
    out = io.BytesIO()
    Image.new("1", (9600, 9600)).save(out, "PNG")     # 92 Mpx in a few kB
    assert rejected(out.getvalue()).code == "image_invalid"
