"""PAdES signatures: development keys, signing, and verification that fails on any change."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from cryptography import x509
from pypdf import PdfReader

from storage import forms, signing
from tests.conftest import vn

NOW = vn(2025, 4, 24, 10, 0)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return signing.generate_dev_keys(tmp_path_factory.mktemp("keys"), organisation="UBND thị trấn Phú Phong",
                                     now=vn(2025, 1, 2, 8, 0))


@pytest.fixture(scope="module")
def signed(keys) -> tuple[bytes, bytes]:
    unsigned = forms.render_result({"code": "000.35.08.X01-250424-0001", "name": "000.35.08.X01-250424-0001-KQ1",
                                    "procedure": {"code": "2.000815", "name": "Chứng thực bản sao từ bản chính"},
                                    "applicant": {"full_name": "Nguyễn Văn An"}, "unit": "UBND thị trấn Phú Phong",
                                    "result": "Bản sao được chứng thực từ bản chính"})
    signer = signing.load_signer(keys.key, keys.cert, chain=[keys.ca])
    return unsigned, signing.sign_pdf(unsigned, signer, now=NOW, reason="Kết quả giải quyết hồ sơ",
                                      location="Phú Phong", name="000.35.08.X01-250424-0001-KQ1")


def verify(data: bytes, keys, **kw) -> signing.Verification:
    return signing.verify_pdf(data, trust_roots=kw.pop("roots", [keys.ca]), now=kw.pop("now", NOW), **kw)


def test_dev_keys(keys):
    ca = x509.load_pem_x509_certificate(keys.ca.read_bytes())
    cert = x509.load_pem_x509_certificate(keys.cert.read_bytes())
    assert cert.issuer == ca.subject and ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert keys.key.stat().st_mode & 0o077 == 0                 # the private key is readable by its owner only
    assert cert.not_valid_before_utc <= NOW <= cert.not_valid_after_utc


def test_a_signed_result_verifies(signed, keys):
    unsigned, data = signed
    assert data.startswith(unsigned)                            # an incremental update: the original bytes stay
    result = verify(data, keys)
    assert result.ok, result.reason
    assert "Phú Phong" in result.signer and result.signed_at == NOW
    sig = PdfReader(io.BytesIO(data)).trailer["/Root"]["/AcroForm"]["/Fields"][0]["/V"]
    assert sig["/SubFilter"] == "/ETSI.CAdES.detached"          # PAdES


def signature_value_at(data: bytes) -> int:
    """Inside the signature value: the end of the CMS hex string, before the zero padding."""
    start = data.index(b"/Contents <") + len(b"/Contents <")
    return start + len(data[start:data.index(b">", start)].rstrip(b"0")) - 10


@pytest.mark.parametrize("where", ["content", "signature value", "signed revision's end"])
def test_one_changed_byte_fails_verification(signed, keys, where):
    # (The CMS also carries unsigned parts, a copy of the CA certificate and zero padding, that no
    # signature covers; a stored document is checked against its sha256 as well, which catches those.)
    unsigned, data = signed
    position = {"content": len(unsigned) // 2, "signature value": signature_value_at(data),
                "signed revision's end": len(data) - 20}[where]
    tampered = bytearray(data)
    tampered[position] ^= 0x01
    result = verify(bytes(tampered), keys)
    assert not result.ok and result.reason


def test_untrusted_unsigned_appended_or_expired(signed, keys, tmp_path):
    unsigned, data = signed
    stranger = signing.generate_dev_keys(tmp_path, organisation="Khác", now=NOW)
    assert "not trusted" in verify(data, keys, roots=[stranger.ca]).reason
    assert "no signature" in verify(unsigned, keys).reason
    assert "added after" in verify(data + b"\n%% appended\n", keys).reason
    assert not verify(data, keys, now=NOW + timedelta(days=6 * 365)).ok      # the certificate has expired
    assert not verify(b"not a pdf", keys).ok


def test_regenerating_keys_keeps_earlier_results_verifiable(tmp_path):
    first = signing.generate_dev_keys(tmp_path, organisation="UBND", now=NOW)
    data = signing.sign_pdf(forms.render_result({"name": "X-KQ1"}), signing.load_signer(first.key, first.cert),
                            now=NOW, reason="r", location="l")
    second = signing.generate_dev_keys(tmp_path, organisation="UBND", now=NOW)
    roots = signing.trust_roots_in(tmp_path)
    assert len(roots) == 2
    assert signing.verify_pdf(data, trust_roots=roots, now=NOW).ok
    assert not signing.verify_pdf(data, trust_roots=[second.ca], now=NOW).ok
