"""First run: with no account yet, a one-time local link (like Jupyter's token) lets the first person create the admin
account in the browser; and the generic sign-in page that streaming pages send signed-out visitors to."""

from __future__ import annotations

import shutil

import pytest
from telehealth_testutil import PASSWORD, fast_settings, include_telehealth

from scopecast.app import build_telehealth
from telehealth.accounts import add_user
from telehealth.session_tokens import SESSION_COOKIE
from tests.helpers.servers import running_server


def token_of(link: str) -> str:
    return link.split("#token=", 1)[1]


async def test_setup_link_creates_the_admin_once(services, client) -> None:
    link = services.first_run_link()
    assert link is not None and link.startswith("/setup#token=")
    assert services.first_run_link("http://127.0.0.1:8080/").startswith("http://127.0.0.1:8080/setup#token=")
    token = token_of(services.first_run_link())  # each call makes a new link and voids the one before
    assert token not in repr(vars(services.first_run)) and token not in repr(services.first_run.__dict__.values())

    old = await client.post(
        "/api/setup", json={"token": token_of(link), "email": "boss@clinic.test", "password": PASSWORD}
    )
    assert (old.status_code, old.json()["detail"]) == (
        403,
        "invalid setup link: use the newest link scopecast serve printed",
    )
    weak = await client.post("/api/setup", json={"token": token, "email": "boss@clinic.test", "password": "short"})
    assert weak.status_code == 422 and "too short" in weak.json()["detail"]
    bad_email = await client.post("/api/setup", json={"token": token, "email": "boss", "password": PASSWORD})
    assert bad_email.status_code == 422  # a refused account leaves the link working
    made = await client.post("/api/setup", json={"token": token, "email": "Boss@Clinic.test", "password": PASSWORD})
    assert made.status_code == 201, made.text
    session = made.json()
    assert session["user"]["role"] == "admin" and session["user"]["email"] == "boss@clinic.test"
    assert session.keys() == {"token", "token_type", "expires_at", "user", "csrf_token"}
    assert client.cookies.get(SESSION_COOKIE) == session["token"] and "HttpOnly" in made.headers["set-cookie"]
    client.cookies.clear()
    me = await client.get("/api/me", headers={"Authorization": f"Bearer {session['token']}"})
    assert me.json()["role"] == "admin"

    again = await client.post("/api/setup", json={"token": token, "email": "second@clinic.test", "password": PASSWORD})
    assert (again.status_code, again.json()["detail"]) == (410, "setup is done: an account exists, sign in at /signin")
    assert services.first_run_link() is None
    assert services.store.row_counts()["users"] == 1


async def test_no_setup_once_accounts_exist(tmp_path) -> None:
    first = build_telehealth(fast_settings(tmp_path / "t", public_base_url="https://clinic.example/"))
    link = first.first_run_link()
    assert link is not None and link.startswith("https://clinic.example/setup#token=")
    add_user(first.store, "gp@clinic.test", PASSWORD, "gp")  # e.g. `scopecast user add` in the meantime
    assert first.first_run_link() is None
    await first.close()
    restarted = build_telehealth(fast_settings(tmp_path / "t"))
    assert restarted.first_run_link() is None
    import httpx
    from fastapi import FastAPI

    app = FastAPI()
    include_telehealth(app, restarted)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.post("/api/setup", json={"token": token_of(link), "email": "x@clinic.test", "password": PASSWORD})
        assert r.status_code == 410
    await restarted.close()


async def test_setup_without_a_link_is_refused(services, client) -> None:
    r = await client.post("/api/setup", json={"token": "guess", "email": "x@clinic.test", "password": PASSWORD})
    assert r.status_code == 403
    assert services.store.row_counts()["users"] == 0


async def test_pages_are_served(client) -> None:
    for path, marker in (("/setup", 'id="setup"'), ("/signin", 'id="signin"')):
        r = await client.get(path)
        assert r.status_code == 200 and marker in r.text and r.headers["content-type"].startswith("text/html")
    for name in ("setup.js", "signin.js"):
        assert (await client.get(f"/telehealth/static/{name}")).status_code == 200


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.mark.browser
async def test_setup_and_sign_in_pages_in_a_browser(services, app) -> None:
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium)")
    from playwright.async_api import async_playwright, expect

    async with running_server(app) as host, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            link = services.first_run_link(f"http://{host}")
            await page.goto(link)
            await page.fill("#email", "boss@clinic.test")
            await page.fill("#password", PASSWORD)
            await page.click("#setup button[type=submit]")
            await expect(page.locator("#done")).to_be_visible()
            await expect(page.locator("#done")).to_contain_text("boss@clinic.test")
            assert "token" not in page.url  # the used link is gone from the address bar (and history)

            # Only a same-origin path is followed after sign-in; anything else goes to "/".
            cases = {
                "/gp": "/gp",
                "/monitor?stream=a#x": "/monitor?stream=a#x",
                "": "/",
                "//evil.example": "/",
                "https://evil.example/": "/",
                "/\\evil.example": "/",
                "\\\\evil.example": "/",
                "/\t/evil.example": "/",
                "javascript:alert(1)": "/",
                "evil.example": "/",
                "/%2F%2Fevil": "/%2F%2Fevil",
            }
            await page.goto(f"http://{host}/signin")
            for raw, expected in cases.items():
                assert await page.evaluate("(raw) => safeNext(raw)", raw) == expected, raw
            for raw, path in (("/gp", "/gp"), ("//evil.example/x", "/")):
                ctx = await browser.new_context()
                p = await ctx.new_page()
                await p.goto(f"http://{host}/signin?next={raw}")
                await p.fill("#email", "boss@clinic.test")
                await p.fill("#password", PASSWORD)
                await p.click("#signin button[type=submit]")
                await p.wait_for_url(f"http://{host}{path}")
                cookies = {c["name"] for c in await ctx.cookies()}
                assert SESSION_COOKIE in cookies
                await ctx.close()
            await page.fill("#email", "boss@clinic.test")
            await page.fill("#password", "wrong password!!")
            await page.click("#signin button[type=submit]")
            await expect(page.locator("#error")).to_have_text("wrong email or password")
        finally:
            await browser.close()
