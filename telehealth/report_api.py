"""Routes for reports (AI draft, edit, sign, amend, read), their FHIR and PDF exports, and de-identified case export."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool

from perception.vlm import VlmBackend
from telehealth.auth import Authenticator
from telehealth.errors import Conflict, NotFound, TelehealthError
from telehealth.evidence_files import EvidenceFiles
from telehealth.fhir_export import ImageFile, ReportDocumentInput, patient_identifier, report_document
from telehealth.http_route import telehealth_router
from telehealth.pdf_export import report_pdf
from telehealth.records import Actor, ReportStatus, Role
from telehealth.report_drafting import AI_DRAFT_NOTICE, draft_body, draft_for, edited_body
from telehealth.report_page import report_page
from telehealth.report_sealing import ReportSealer
from telehealth.schemas import ReportEdit, ReportOut, ReportVersionOut, RowId
from telehealth.settings import TelehealthSettings
from telehealth.store.analyses import AnalysisRecord, analysis_by_id, case_analyses
from telehealth.store.audit import AuditAction
from telehealth.store.cases import CaseStore
from telehealth.store.deidentify import deidentified_case
from telehealth.store.patients import patient_for_case
from telehealth.store.reports import (
    ReportVersionRecord,
    ReportView,
    amend,
    case_reports,
    edit_draft,
    latest_signed,
    latest_version_id,
    sign,
    signer_name,
    signer_record,
    start_report,
    view_report,
)
from telehealth.store.signed_pdfs import ReplacedVersion, SealedPdf, replaced_by, signed_pdf

_PRIVATE = {"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}


def report_out(view: ReportView) -> ReportOut:
    v = view.current
    return ReportOut(
        id=view.report_id,
        case_id=view.case_id,
        version_id=v.id,
        version=v.version,
        status=v.status.value,
        notice=AI_DRAFT_NOTICE if v.status is ReportStatus.draft else None,
        body=v.body,
        signed_at=v.signed_at,
        signed_by=v.signed_by,
        amends_version_id=v.amends_version_id,
        versions=[
            ReportVersionOut(
                version_id=x.id,
                version=x.version,
                status=x.status.value,
                signed_at=x.signed_at,
                amends_version_id=x.amends_version_id,
            )
            for x in view.versions
        ],
    )


def _source(store: CaseStore, evidence: EvidenceFiles, view: ReportView) -> tuple[AnalysisRecord | None, bytes | None]:
    analysis = analysis_by_id(store, (view.current.body.get("source") or {}).get("analysis_id"))
    png = None if analysis is None or analysis.evidence_path is None else evidence.read(analysis.evidence_path)
    return analysis, png


def _photo(
    store: CaseStore, actor: Actor, view: ReportView, photo_id: int | None
) -> tuple[datetime | None, ImageFile | None]:
    """When the analysed photo was taken, and its bytes while its file is still stored."""
    if photo_id is None:
        return None, None
    try:
        record, data = store.read_photo(actor, photo_id, "photo")
    except NotFound:  # the file is gone (reconciled as missing): the time still comes from its row
        _case, photos = store.case_with_photos(actor, view.case_id)
        found = next((p for p in photos if p.id == photo_id), None)
        return (None if found is None else found.taken_at), None
    return record.taken_at, ImageFile(record.media_type, data)


def report_router(
    store: CaseStore,
    auth: Authenticator,
    settings: TelehealthSettings,
    evidence: EvidenceFiles,
    vlm: VlmBackend,
    sealer: ReportSealer,
) -> APIRouter:
    """`vlm` drafts the reports: the backend the server was started with; `sealer` signs a version's PDF as the
    version is signed."""
    router = telehealth_router(settings.max_json_bytes)
    anyone = auth.require()
    authors = auth.require(Role.gp, Role.surgeon, Role.admin)
    signers = auth.require(Role.gp, Role.admin)

    @router.post("/api/cases/{case_id}/reports", response_model=ReportOut, status_code=201, tags=["telehealth"])
    async def create_report(case_id: RowId, actor: Actor = Depends(authors)) -> ReportOut:
        items = await run_in_threadpool(case_analyses, store, actor, case_id, "report_source")
        analysed = [(p, a) for p, a in items if a is not None and a.assessment is not None]
        if not analysed:
            raise Conflict("no analysed photo in this case yet: nothing to draft a report from")
        photo, analysis = analysed[-1]
        draft = await draft_for(vlm, photo.id, analysis)
        version = await run_in_threadpool(start_report, store, actor, case_id, draft_body(draft, photo.id, analysis))
        return report_out(await run_in_threadpool(view_report, store, actor, version.report_id, None))

    @router.get("/api/cases/{case_id}/reports", response_model=list[ReportOut], tags=["telehealth"])
    def list_reports(case_id: RowId, actor: Actor = Depends(anyone)) -> list[ReportOut]:
        return [report_out(v) for v in case_reports(store, actor, case_id)]

    @router.get("/api/reports/{report_id}", response_model=ReportOut, tags=["telehealth"])
    def get_report(report_id: RowId, actor: Actor = Depends(anyone)) -> ReportOut:
        return report_out(view_report(store, actor, report_id))

    @router.put("/api/reports/{report_id}", response_model=ReportOut, tags=["telehealth"])
    def edit_report(report_id: RowId, body: ReportEdit, actor: Actor = Depends(authors)) -> ReportOut:
        current = view_report(store, actor, report_id, audit=None).current
        sections = None if body.sections is None else body.sections.model_dump()
        edit_draft(store, actor, current.id, edited_body(current.body, body.text, sections))
        return report_out(view_report(store, actor, report_id, audit=None))

    @router.post("/api/reports/{report_id}/sign", response_model=ReportOut, tags=["telehealth"])
    def sign_report(report_id: RowId, actor: Actor = Depends(signers)) -> ReportOut:
        # A sync route: FastAPI runs it on a worker thread, where rendering and PAdES-signing the PDF belong.
        version_id = latest_version_id(store, actor, report_id)
        view = view_report(store, actor, report_id, audit=None)
        page = report_page(store, actor, evidence, view)
        signer = signer_name(store, actor.user_id) or f"user {actor.user_id}"

        def seal(record: ReportVersionRecord, replaces: ReplacedVersion | None) -> SealedPdf:
            return sealer.seal(view, record, replaces, page, signer)

        sign(store, actor, version_id, settings.clinic_zone, seal=seal)
        return report_out(view_report(store, actor, report_id, audit=None))

    @router.post("/api/reports/{report_id}/amend", response_model=ReportOut, status_code=201, tags=["telehealth"])
    def amend_report(report_id: RowId, body: ReportEdit | None = None, actor: Actor = Depends(authors)) -> ReportOut:
        current = view_report(store, actor, report_id, audit=None).current
        sections = None if body is None or body.sections is None else body.sections.model_dump()
        text = None if body is None else body.text
        new_body = edited_body(current.body, text, sections) if body is not None else dict(current.body)
        new_body["notice"] = AI_DRAFT_NOTICE
        amend(store, actor, current.id, new_body)
        return report_out(view_report(store, actor, report_id, audit=None))

    @router.get("/api/reports/{report_id}/fhir", tags=["telehealth"])
    def report_fhir(report_id: RowId, actor: Actor = Depends(anyone)) -> Response:
        """The latest signed version as a FHIR document Bundle; 409 while no version is signed."""
        first = view_report(store, actor, report_id, audit=None)
        signed = latest_signed(first)
        if signed is None:
            raise Conflict(
                f"report {report_id} is not signed yet: an AI draft is never exported as a signed report; "
                "a GP signs it first"
            )
        stored = signed_pdf(store, signed.id)
        if stored is None:
            raise Conflict(
                f"report {report_id} version {signed.version} was signed before signed PDFs existed, so there is no "
                "signed PDF to export with it: amend and sign the report to export it"
            )
        signer = signer_record(store, signed.signed_by)
        if signer is None:
            raise Conflict(f"the account that signed report {report_id} no longer exists")
        patient = patient_for_case(store, actor, first.case_id)
        patient_identifier(patient.identity, settings.mrn_system)  # refused before the export is recorded
        view = view_report(store, actor, report_id, audit=AuditAction.export, version=signed.version)
        analysis, png = _source(store, evidence, view)
        case = store.require_case(actor, view.case_id)
        taken_at, photo = _photo(store, actor, view, None if analysis is None else analysis.photo_id)
        bundle = report_document(
            ReportDocumentInput(
                report_id=report_id,
                version=signed,
                patient_id=patient.id,
                patient=patient.identity,
                signer=signer,
                body_site=case.label,
                taken_at=taken_at,
                photo=photo,
                evidence_png=png,
                assessment=None if analysis is None else analysis.assessment,
                model_name=None if analysis is None else analysis.model_name,
                model_version=None if analysis is None else analysis.model_version,
                signed_pdf=sealer.read(stored),
                signed_pdf_sha256=stored.sha256,
                replaces=replaced_by(store, signed.id),
                mrn_system=settings.mrn_system,
            )
        )
        return Response(bundle.model_dump_json(), media_type="application/fhir+json", headers=_PRIVATE)

    @router.get("/api/reports/{report_id}/pdf", tags=["telehealth"], response_class=Response)
    def report_pdf_route(
        report_id: RowId, version: int | None = Query(None, ge=1), actor: Actor = Depends(anyone)
    ) -> Response:
        """A signed version: exactly the PDF stored when it was signed. A draft: its unsigned PDF, marked draft."""
        view = view_report(store, actor, report_id, audit=AuditAction.export, version=version)
        v = view.current
        stored = signed_pdf(store, v.id) if v.status is ReportStatus.signed else None
        if stored is not None:
            pdf = sealer.read(stored)
        else:  # a draft, or a version signed before PDFs were signed
            page = report_page(store, actor, evidence, view)
            replaces = replaced_by(store, v.id)
            pdf = report_pdf(view, page, signer_name(store, v.signed_by), settings.clinic_zone, replaces=replaces)
        headers = {
            **_PRIVATE,
            "Content-Disposition": f'attachment; filename="report-{report_id}-v{v.version}.pdf"',
        }
        if stored is not None:
            headers["X-Signed-PDF-SHA256"] = stored.sha256
        return Response(pdf, media_type="application/pdf", headers=headers)

    @router.get("/api/cases/{case_id}/export", tags=["telehealth"])
    def export_case(
        case_id: RowId, deidentified: bool = Query(False), actor: Actor = Depends(authors)
    ) -> dict[str, Any]:
        if not deidentified:
            raise TelehealthError("only de-identified export is available: add ?deidentified=true")
        return deidentified_case(store, actor, case_id)

    return router
