"""Routes of accounts and sign-in: log in and out, who am I, invite a patient and accept, the first-run setup."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from telehealth.accounts import add_user, authenticate, clean_display_name
from telehealth.auth import Authenticator
from telehealth.errors import InvalidSession, SetupDone
from telehealth.first_run import FirstRunSetup
from telehealth.http_route import telehealth_router
from telehealth.login_throttle import LoginThrottle, ThrottleLimits
from telehealth.patient_api import invite_out
from telehealth.records import Actor, Role, UserRecord
from telehealth.schemas import (
    CurrentSession,
    InviteAccept,
    InviteCreate,
    InviteOut,
    LoginRequest,
    ProfileEdit,
    SessionOut,
    SetupRequest,
    UserOut,
)
from telehealth.session_tokens import SESSION_COOKIE
from telehealth.settings import TelehealthSettings
from telehealth.store.accounts import set_display_name
from telehealth.store.cases import CaseStore
from telehealth.store.invites import accept_invite, create_invite


def account_router(
    store: CaseStore, auth: Authenticator, settings: TelehealthSettings, first_run: FirstRunSetup
) -> APIRouter:
    """`first_run` holds the setup link's token (TelehealthServices.first_run_link makes it)."""
    router = telehealth_router(settings.max_json_bytes)
    anyone = auth.require()

    def session_response(user: UserRecord, response: Response) -> SessionOut:
        token, expires_at = auth.sign_in(user.id)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            max_age=settings.session_ttl_s,
            httponly=True,
            secure=settings.cookie_secure,
            samesite="strict",
            path="/",
        )
        return SessionOut(
            token=token, expires_at=expires_at, user=UserOut.of(user), csrf_token=auth.csrf_token_for(token)
        )

    throttle = LoginThrottle(
        ThrottleLimits(
            settings.login_failures_per_account, settings.login_failures_per_address, settings.login_window_s
        )
    )

    def client_address(request: Request) -> str | None:
        return request.client.host if request.client and settings.login_failures_per_address else None

    @router.post(
        "/api/login",
        response_model=SessionOut,
        tags=["telehealth"],
        responses={429: {"description": "too many failed sign-ins; see Retry-After"}},
    )
    def login(body: LoginRequest, request: Request, response: Response) -> SessionOut:
        account = body.email.strip().lower()
        address = client_address(request)
        throttle.check(account, address)
        try:
            user = authenticate(store, body.email, body.password)
        except InvalidSession:
            throttle.failed(account, address)
            raise
        throttle.succeeded(account)
        return session_response(user, response)

    @router.post("/api/logout", status_code=204, tags=["telehealth"])
    def logout(request: Request, response: Response) -> Response:
        """Revoke the caller's session: the bearer token's, and the cookie's when the browser holds one (signing out
        ends both). Revoking by cookie needs no CSRF token: the worst a forged request could do is sign someone out,
        and SameSite=Strict keeps other sites' requests from carrying the cookie at all."""
        try:
            bearer = auth.bearer_from(request)
        except InvalidSession:
            bearer = None
        presented = {bearer, request.cookies.get(SESSION_COOKIE)}
        for token in (t for t in presented if t):
            auth.sign_out(token)
        response.delete_cookie(
            SESSION_COOKIE, path="/", secure=settings.cookie_secure, httponly=True, samesite="strict"
        )
        response.status_code = 204
        return response

    @router.get("/api/me", response_model=UserOut, tags=["telehealth"])
    def me(actor: Actor = Depends(anyone)) -> UserOut:
        return UserOut.of(store.user_record(actor))

    @router.put("/api/me", response_model=UserOut, tags=["telehealth"])
    def edit_me(body: ProfileEdit, actor: Actor = Depends(anyone)) -> UserOut:
        """Your name as signed reports and FHIR exports show it (audited)."""
        return UserOut.of(set_display_name(store, actor.user_id, clean_display_name(body.display_name)))

    @router.get(
        "/api/session",
        response_model=CurrentSession,
        tags=["telehealth"],
        responses={401: {"description": "no live session: sign in"}},
    )
    def current_session(request: Request, actor: Actor = Depends(anyone)) -> CurrentSession:
        """Who the session cookie (or bearer token) signs in, and the CSRF token for cookie writes: what a page
        reloads with instead of asking for the password again."""
        token = auth.token_from(request)
        assert token is not None  # `anyone` refused the request otherwise
        return CurrentSession(
            user=UserOut.of(store.user_record(actor)),
            csrf_token=auth.csrf_token_for(token),
            idle_timeout_s=settings.session_idle_s,
        )

    @router.post("/api/invites", response_model=InviteOut, status_code=201, tags=["telehealth"])
    def invite(
        body: InviteCreate, request: Request, actor: Actor = Depends(auth.require(Role.gp, Role.admin))
    ) -> InviteOut:
        made = create_invite(store, actor, body.email, settings.invite_ttl_s)
        return invite_out(settings, made.token, made.patient_id, made.expires_at, str(request.base_url))

    @router.post(
        "/api/invites/{token}/accept",
        response_model=SessionOut,
        status_code=201,
        tags=["telehealth"],
        responses={
            401: {"description": "the email has an account and this is not its password"},
            429: {"description": "too many failed sign-ins; see Retry-After"},
        },
    )
    def accept(token: str, body: InviteAccept, request: Request, response: Response) -> SessionOut:
        user = accept_invite(store, token, body.password, throttle, client_address(request))
        return session_response(user, response)

    @router.post(
        "/api/setup",
        response_model=SessionOut,
        status_code=201,
        tags=["telehealth"],
        responses={403: {"description": "wrong or no setup link"}, 410: {"description": "an account exists"}},
    )
    def first_account(body: SetupRequest, response: Response) -> SessionOut:
        """Create the first account, an admin, with the first-run link's token; signs them in like /api/login."""
        if store.has_users():
            raise SetupDone("setup is done: an account exists, sign in at /signin")
        with first_run.claim(body.token):
            user = add_user(store, body.email, body.password, Role.admin)  # the usual email and password rules
        return session_response(user, response)

    return router
