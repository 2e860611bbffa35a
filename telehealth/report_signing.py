"""PAdES signatures on report PDFs (pyHanko): sign PDF bytes with the clinic's key, and check a signed PDF.

The signature is visible at the foot of the last page: the signing clinician, the time, and, for a development key,
"DEVELOPMENT KEY - NOT FOR CLINICAL USE". Any PAdES validator (Adobe Reader, pyhanko's CLI, EU DSS) checks it given
the clinic's certificate. Blocking (hashing, parsing; pyhanko runs its own event loop inside): call from a worker
thread, never on the event loop.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import AxisAlignment, InnerScaling, Margins, SimpleBoxLayoutRule
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.text import TextBoxStyle
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigFieldSpec
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.status import PdfSignatureStatus, SignatureCoverageLevel
from pyhanko.stamp import TextStampStyle
from pyhanko_certvalidator import ValidationContext

from telehealth.signing_key import DEVELOPMENT_LABEL, ClinicSigningKey, is_development_certificate

SIGNATURE_FIELD = "ClinicianSignature"
# Points on the last page, inside fpdf's 15 mm bottom margin, which report_pdf never writes into: the page layout
# can change without moving the signature onto text.
SIGNATURE_BOX = (42, 6, 553, 40)

_STAMP = TextStampStyle(
    stamp_text="%(title)s\nSigned by %(clinician)s on %(when)s\n%(key)s",
    border_width=1,
    text_box_style=TextBoxStyle(font_size=9),
    # Left-aligned and at most its own size: the default shrinks three short lines to an unreadable strip.
    inner_content_layout=SimpleBoxLayoutRule(
        x_align=AxisAlignment.ALIGN_MIN,
        y_align=AxisAlignment.ALIGN_MID,
        margins=Margins(left=6, right=6),
        inner_content_scaling=InnerScaling.SHRINK_TO_FIT,
    ),
)


def sign_report_pdf(pdf: bytes, key: ClinicSigningKey, clinician: str, when: str, reason: str) -> bytes:
    """`pdf` with a PAdES baseline signature over the whole file. `when` is the signing time as the clinic reads it
    (the machine-readable time is the signature's own); `reason` goes into the signature dictionary."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        name=clinician,
    )
    signer = signers.PdfSigner(
        meta,
        signer=key.signer,
        stamp_style=_STAMP,
        new_field_spec=SigFieldSpec(SIGNATURE_FIELD, on_page=-1, box=SIGNATURE_BOX),
    )
    label = DEVELOPMENT_LABEL if key.development else f"Clinic key: {key.subject}"
    params = {"title": "Digitally signed (PAdES)", "clinician": clinician, "when": when, "key": label}
    return bytes(signer.sign_pdf(writer, appearance_text_params=params).getvalue())


@dataclass(frozen=True)
class SignatureCheck:
    """What verifying a signed report found: `valid`, else `reason` says what is wrong."""

    valid: bool
    reason: str
    signer_name: str | None = None  # the clinician named in the signature
    signed_at: datetime | None = None
    certificate: str | None = None  # subject of the signing certificate
    development_key: bool = False


def _status_problem(status: PdfSignatureStatus) -> str | None:
    if not status.intact:
        return "the signed content was changed after signing (its digest no longer matches the signature)"
    if not status.valid:
        return "the signature value does not verify against the signing certificate"
    if status.coverage is not SignatureCoverageLevel.ENTIRE_FILE:
        return "the file was changed after signing: content was added that the signature does not cover"
    if not status.trusted:
        subject = status.signing_cert.subject.human_friendly
        return f"signed by a certificate that is not trusted here ({subject}): give the clinic's certificate"
    return None


@contextmanager
def _pyhanko_quiet() -> Iterator[None]:
    """A damaged or untrusted file is this function's result, not an error pyhanko should log on its own."""
    log = logging.getLogger("pyhanko")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def verify_report_pdf(data: bytes, trusted: Sequence[asn1_x509.Certificate]) -> SignatureCheck:
    """Check the PDF's signature against the `trusted` certificates (the clinic's), offline (no revocation fetch)."""
    with _pyhanko_quiet():
        try:
            reader = PdfFileReader(io.BytesIO(data), strict=False)
            embedded = list(reader.embedded_signatures)
        except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
            return SignatureCheck(False, f"not a readable PDF (damaged, or changed after signing): {exc}")
        if not embedded and b"/ByteRange" in data:
            # A signature dictionary is there but no form field leads to it: the file's structure was edited.
            return SignatureCheck(False, "the file was changed after signing: its signature is no longer attached")
        if not embedded:
            return SignatureCheck(False, "the PDF carries no signature")
        if len(embedded) > 1:
            return SignatureCheck(False, f"the PDF carries {len(embedded)} signatures; a report has exactly one")
        signature = embedded[0]
        try:
            status = validate_pdf_signature(
                signature, ValidationContext(trust_roots=list(trusted), allow_fetching=False)
            )
        except (SignatureValidationError, PdfError, ValueError, KeyError, TypeError) as exc:
            return SignatureCheck(False, f"the signature cannot be checked: {exc}")
    name = signature.sig_object.get("/Name")
    problem = _status_problem(status)
    return SignatureCheck(
        valid=problem is None,
        reason=problem or "valid",
        signer_name=None if name is None else str(name),
        signed_at=status.signer_reported_dt,
        certificate=str(status.signing_cert.subject.human_friendly),
        development_key=is_development_certificate(status.signing_cert),
    )
