"""The composition root builds telehealth with the server's own VLM: a report draft comes from the backend
`scopecast serve` was started with (--vlm-backend), not from a second, built-in one."""

from __future__ import annotations

import httpx
import numpy as np

from perception.vlm import ReportContext, ReportDraft, VlmInfo
from scopecast.app import build_telehealth, create_app
from scopecast.settings import Settings
from telehealth.accounts import add_user
from telehealth.wound import fixed_mask_segmenter
from tests.helpers.stream_access import fixed_token_access
from tests.telehealth.telehealth_testutil import PASSWORD, fast_settings
from tests.telehealth.wound_photos import scene, scene_jpeg


class DraftingVlm:
    """Stands for an OpenAI-compatible server's model: drafts carry its name, and it sees the typed measurements."""

    def __init__(self) -> None:
        self.contexts: list[ReportContext] = []

    @property
    def info(self) -> VlmInfo:
        return VlmInfo("clinic-vlm", "7", "openai")

    async def answer(self, request):  # noqa: ANN001, ANN201 - not asked in this test
        yield "not used"

    async def draft_report(self, context: ReportContext) -> ReportDraft:
        self.contexts.append(context)
        return ReportDraft(
            findings=["wound outlined on the evidence image"],
            measurements=context.measurements.facts(),
            impression="drafted by the server's VLM",
            follow_up="review in a week",
            uncertainty="a test double",
            model_name=self.info.name,
            model_version=self.info.version,
            backend=self.info.backend,
            evidence_frames=list(context.evidence_frames),
        )

    async def aclose(self) -> None:
        return None


async def test_a_report_is_drafted_by_the_backend_the_server_was_started_with(tmp_path) -> None:
    services = build_telehealth(
        fast_settings(tmp_path / "telehealth"),
        segmenter_factory=lambda: fixed_mask_segmenter(scene(True).mask, "synthetic-mask", "1"),
    )
    vlm = DraftingVlm()
    app = create_app(
        Settings(serve_sample=False, model="none"), vlm=vlm, telehealth=services, stream_access=fixed_token_access()
    )
    add_user(services.store, "gp@clinic.test", PASSWORD, "gp")
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            gp = (await c.post("/api/login", json={"email": "gp@clinic.test", "password": PASSWORD})).json()["token"]
            gp_headers = {"Authorization": f"Bearer {gp}"}
            invite = await c.post("/api/invites", json={"email": "pat@mail.test"}, headers=gp_headers)
            token = invite.json()["invite_url"].split("invite=")[1]
            patient = (await c.post(f"/api/invites/{token}/accept", json={"password": PASSWORD})).json()["token"]
            patient_headers = {"Authorization": f"Bearer {patient}"}
            c.cookies.clear()  # each side speaks with its bearer token only
            case_id = (await c.post("/api/cases", json={}, headers=patient_headers)).json()["id"]
            sent = await c.post(
                f"/api/cases/{case_id}/photos",
                headers=patient_headers,
                files={"photo": ("w.jpg", scene_jpeg(True), "image/jpeg")},
            )
            assert sent.status_code == 201, sent.text
            await services.analyses.wait_idle()
            drafted = await c.post(f"/api/cases/{case_id}/reports", headers=gp_headers)
            assert drafted.status_code == 201, drafted.text
        body = drafted.json()["body"]
        assert body["source"]["drafted_by"].startswith("clinic-vlm 7 (openai)")
        assert body["sections"]["impression"] == "drafted by the server's VLM"
        (context,) = vlm.contexts
        assert context.measurements.area_cm2 is not None and body["measurements"]["wound_area_cm2"] > 0
        (wound,) = context.findings[0].objects
        ys, xs = np.nonzero(scene(True).mask)
        # The wound as the segmenter gave it: its box, and the given outline's own score (not a made-up one).
        assert wound.box == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) and wound.score == 1.0
    finally:
        await services.close()
