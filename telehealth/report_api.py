"""Routes for reports (AI draft, edit, sign, amend, read), their FHIR and PDF exports, and de-identified case export."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.concurrency import run_in_threadpool

from perception.vlm import VlmBackend
from telehealth.auth import Authenticator
from telehealth.errors import Conflict, TelehealthError
from telehealth.evidence_files import EvidenceFiles
from telehealth.fhir_export import report_bundle
from telehealth.http_route import telehealth_router
from telehealth.pdf_export import report_pdf
from telehealth.records import Actor, ReportStatus, Role
from telehealth.report_drafting import AI_DRAFT_NOTICE, draft_body, draft_for, edited_body
from telehealth.schemas import ReportEdit, ReportOut, ReportVersionOut, RowId
from telehealth.settings import TelehealthSettings
from telehealth.store.analyses import AnalysisRecord, analysis_by_id, case_analyses
from telehealth.store.audit import AuditAction
from telehealth.store.cases import CaseStore
from telehealth.store.deidentify import deidentified_case
from telehealth.store.reports import (
    ReportView,
    amend,
    case_reports,
    edit_draft,
    latest_version_id,
    sign,
    signer_email,
    start_report,
    view_report,
)

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


def report_router(
    store: CaseStore, auth: Authenticator, settings: TelehealthSettings, evidence: EvidenceFiles, vlm: VlmBackend
) -> APIRouter:
    """`vlm` drafts the reports: the backend the server was started with."""
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
        sign(store, actor, latest_version_id(store, actor, report_id), settings.clinic_zone)
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
        view = view_report(store, actor, report_id, audit=AuditAction.export)
        analysis, png = _source(store, evidence, view)
        bundle = report_bundle(view, None if analysis is None else analysis.assessment, png)
        return Response(bundle.model_dump_json(), media_type="application/fhir+json", headers=_PRIVATE)

    @router.get("/api/reports/{report_id}/pdf", tags=["telehealth"], response_class=Response)
    def report_pdf_route(report_id: RowId, actor: Actor = Depends(anyone)) -> Response:
        view = view_report(store, actor, report_id, audit=AuditAction.export)
        _analysis, png = _source(store, evidence, view)
        pdf = report_pdf(view, png, signer_email(store, view.current.signed_by), settings.clinic_zone)
        headers = {
            **_PRIVATE,
            "Content-Disposition": f'attachment; filename="report-{report_id}-v{view.current.version}.pdf"',
        }
        return Response(pdf, media_type="application/pdf", headers=headers)

    @router.get("/api/cases/{case_id}/export", tags=["telehealth"])
    def export_case(
        case_id: RowId, deidentified: bool = Query(False), actor: Actor = Depends(authors)
    ) -> dict[str, Any]:
        if not deidentified:
            raise TelehealthError("only de-identified export is available: add ?deidentified=true")
        return deidentified_case(store, actor, case_id)

    return router
