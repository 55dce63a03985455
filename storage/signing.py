"""PAdES signatures on result PDFs (pyHanko), and the development keys to make them with.

Production keys come from configuration (PEM key and certificate, the issuing chain, the trust roots).
For development and demos, `generate_dev_keys` makes a self-signed CA and a signing certificate it
issues, with `cryptography`. Verification checks that the signature covers the whole file, that the
bytes are intact, and that the signer's certificate chains to a trusted root at the given moment."""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pyhanko.keys import load_cert_from_pemder
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.general import SigningError
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

CA_FILE, KEY_FILE, CERT_FILE = "ca.cert.pem", "signer.key.pem", "signer.cert.pem"


@dataclass(frozen=True)
class KeyFiles:
    key: Path
    cert: Path
    ca: Path


# --- development keys -------------------------------------------------------------------------------

def dev_keys(directory: Path) -> KeyFiles:
    d = Path(directory)
    return KeyFiles(d / KEY_FILE, d / CERT_FILE, d / CA_FILE)


def generate_dev_keys(directory: Path, *, organisation: str, now: datetime) -> KeyFiles:
    """A development CA and a signing certificate it issues, as PEM files in `directory`. A CA that was
    there is kept as `ca-<serial>.cert.pem`, so results signed before still verify."""
    files = dev_keys(directory)
    files.ca.parent.mkdir(parents=True, exist_ok=True)
    if files.ca.exists():
        old = x509.load_pem_x509_certificate(files.ca.read_bytes())
        files.ca.rename(files.ca.with_name(f"ca-{old.serial_number:x}.cert.pem"))
    # Valid from well before `now`: demos and tests run scripted clocks set in the past.
    start, end = now - timedelta(days=5 * 365), now + timedelta(days=5 * 365)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = _name("motcua CA phát triển (không dùng cho văn bản thật)", organisation)
    ca = (_builder(ca_name, ca_name, ca_key.public_key(), start, end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_key_usage(cert_sign=True), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (_builder(_name("motcua khóa ký phát triển", organisation), ca_name, key.public_key(), start, end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(files.key, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()), private=True)
    _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))
    _write(files.ca, ca.public_bytes(serialization.Encoding.PEM))
    return files


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation[:64]),   # X.509 upper bound
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject, issuer, public_key, start, end) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
            .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(digital_signature=not cert_sign, content_commitment=not cert_sign,
                         key_encipherment=False, data_encipherment=False, key_agreement=False,
                         key_cert_sign=cert_sign, crl_sign=cert_sign, encipher_only=False, decipher_only=False)


def _write(path: Path, data: bytes, private: bool = False) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def trust_roots_in(directory: Path) -> list[Path]:
    """Every development CA certificate in the key directory (the current and earlier ones)."""
    return sorted(Path(directory).glob("ca*.cert.pem"))


# --- signing ----------------------------------------------------------------------------------------

def load_signer(key: Path, cert: Path, *, chain: Sequence[Path] = (), passphrase: str | None = None
                ) -> signers.SimpleSigner:
    signer = signers.SimpleSigner.load(str(key), str(cert), ca_chain_files=[str(p) for p in chain] or None,
                                       key_passphrase=passphrase.encode() if passphrase else None)
    if signer is None:      # pyHanko logs the reason and returns None
        raise ValueError(f"cannot load the signing key {key} with certificate {cert}")
    return signer


class _SignerAt(signers.PdfSigner):
    """pyHanko takes the signing time from the wall clock; ours is injected like everywhere else."""

    def __init__(self, *args, now: datetime, **kwargs):
        super().__init__(*args, **kwargs)
        self._now = now

    def init_signing_session(self, pdf_out, existing_fields_only=False):
        session = super().init_signing_session(pdf_out, existing_fields_only)
        session.system_time = self._now
        return session


def sign_pdf(data: bytes, signer: signers.Signer, *, now: datetime, reason: str, location: str,
             name: str | None = None, field: str = "ChuKySo") -> bytes:
    """The PDF with a PAdES (ETSI.CAdES.detached) signature appended as an incremental update."""
    meta = signers.PdfSignatureMetadata(field_name=field, md_algorithm="sha256", subfilter=SigSeedSubFilter.PADES,
                                        reason=reason, location=location, name=name)
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    out = _SignerAt(meta, signer, now=now).sign_pdf(writer)
    return out.getvalue()


# --- verification -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verification:
    ok: bool
    reason: str                     # why not, in English, for logs; "" when ok
    signer: str | None = None
    signed_at: datetime | None = None


def verify_pdf(data: bytes, *, trust_roots: Sequence[Path], now: datetime | None = None) -> Verification:
    """Every signature intact, cryptographically valid and chaining to a trust root at `now`; the last
    one covering the entire file (nothing appended after signing)."""
    try:
        roots = [load_cert_from_pemder(str(p)) for p in trust_roots]
        context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail",
                                    moment=now or datetime.now(timezone.utc))
        sigs = PdfFileReader(io.BytesIO(data), strict=False).embedded_signatures
        if not sigs:
            return Verification(False, "the document carries no signature")
        for sig in sigs:
            status = validate_pdf_signature(sig, context)
            if not (status.intact and status.valid):
                return Verification(False, f"signature {sig.field_name}: content changed after signing")
            if not status.trusted:
                return Verification(False, f"signature {sig.field_name}: signer not trusted")
        if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
            return Verification(False, "content was added after the last signature")
        cert = status.signing_cert
        return Verification(True, "", cert.subject.human_friendly, status.signer_reported_dt)
    except (SigningError, ValueError, KeyError, OSError) as exc:
        return Verification(False, f"cannot read the signature: {exc}")
    except Exception as exc:    # a damaged file can fail anywhere in the PDF or ASN.1 parsers
        return Verification(False, f"cannot read the signature: {type(exc).__name__}: {exc}")
