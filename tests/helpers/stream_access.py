"""Sign-in for streaming tests that run without telehealth: fixed tokens standing for users of each kind.

The real login (telehealth accounts through scopecast.stream_sign_in) is tested in tests/stream/test_stream_auth.py.
"""

from __future__ import annotations

from stream.access import AccessDenied, Principal, StreamAccess

CLINICIAN_TOKEN = "test-clinician-token"
PATIENT_TOKEN = "test-patient-token"
COOKIE = "scopecast_session"

_PRINCIPALS = {
    CLINICIAN_TOKEN: Principal(user_id=1, role="surgeon", may_watch=True, may_publish=True),
    PATIENT_TOKEN: Principal(user_id=2, role="patient", may_watch=False, may_publish=False),
}


def fixed_token_access(allowed_origins: frozenset[str] = frozenset()) -> StreamAccess:
    async def authenticate(token: str) -> Principal:
        principal = _PRINCIPALS.get(token)
        if principal is None:
            raise AccessDenied("invalid_session", "invalid session token")
        return principal

    return StreamAccess(authenticate, COOKIE, "/signin", allowed_origins)


CLINICIAN_HEADERS = {"Authorization": f"Bearer {CLINICIAN_TOKEN}"}


async def clinician_page(browser, addr: str, **context_options):  # -> playwright Page
    """A browser page signed in as the test clinician (the session cookie set for the server's origin)."""
    context = await browser.new_context(**context_options)
    await context.add_cookies([{"name": COOKIE, "value": CLINICIAN_TOKEN, "url": f"http://{addr}"}])
    return await context.new_page()


async def watch_monitor_with_findings(page, addr: str, stream_id: str = "sample") -> None:
    """Open /monitor on `stream_id` and wait until its video plays (over a second in) and findings are listed."""
    await page.goto(f"http://{addr}/monitor?stream={stream_id}")
    await page.wait_for_function(
        "() => { const v = document.querySelector('#video'); return v && v.videoWidth > 0 && v.currentTime > 1; }",
        timeout=30_000,
    )
    await page.wait_for_selector("#panel li.object", timeout=15_000)
