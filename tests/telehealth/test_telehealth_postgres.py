"""The telehealth API on PostgreSQL: the same tests as on SQLite for accounts, photos, reports and consults, run
against a fresh database on a throwaway PostgreSQL server (skipped, saying why, where PostgreSQL is not installed).

Migrations up/down and the append-only/immutable triggers on PostgreSQL are in test_telehealth_migrations.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres_server import fresh_database
from test_telehealth_accounts import test_invite_flow_replay_and_expiry, test_login_and_me, test_visibility_by_role
from test_telehealth_bad_input import (
    test_bad_request_is_refused_and_changes_nothing,
    test_replayed_invite_is_gone_and_changes_nothing,
)
from test_telehealth_consults import (
    rooms,
    test_capture_stores_the_patient_frame_in_the_case_and_analyses_it,
    test_consult_actions_are_audited,
    test_unknown_ended_and_expired_rooms_refuse_joins,
)
from test_telehealth_invite_existing import (
    test_existing_and_new_emails_get_the_same_answer,
    test_existing_patient_accepting_with_their_password_moves_to_the_new_gp,
)
from test_telehealth_photo_api import (
    test_idempotency_key_returns_the_original_receipt,
    test_upload_receipt_and_readback,
)
from test_telehealth_report_api import test_deidentified_export, test_draft_edit_sign_amend, test_fhir_bundle
from test_telehealth_sessions import (
    test_actor_for_token_reasons,
    test_logout_revokes_this_session_only,
    test_signing_in_purges_expired_sessions,
)
from wound_photos import synthetic_wound_services as services  # noqa: F401  (the known-mask segmenter)


@pytest.fixture
def telehealth_db_url(postgres_server: str) -> Iterator[str]:
    with fresh_database(postgres_server) as url:
        yield url


__all__ = [
    "rooms",
    "services",
    "test_invite_flow_replay_and_expiry",
    "test_login_and_me",
    "test_visibility_by_role",
    "test_bad_request_is_refused_and_changes_nothing",
    "test_replayed_invite_is_gone_and_changes_nothing",
    "test_capture_stores_the_patient_frame_in_the_case_and_analyses_it",
    "test_consult_actions_are_audited",
    "test_unknown_ended_and_expired_rooms_refuse_joins",
    "test_idempotency_key_returns_the_original_receipt",
    "test_upload_receipt_and_readback",
    "test_deidentified_export",
    "test_draft_edit_sign_amend",
    "test_fhir_bundle",
    "test_existing_and_new_emails_get_the_same_answer",
    "test_existing_patient_accepting_with_their_password_moves_to_the_new_gp",
    "test_actor_for_token_reasons",
    "test_logout_revokes_this_session_only",
    "test_signing_in_purges_expired_sessions",
]


def test_these_tests_really_run_on_postgresql(services) -> None:
    assert services.store.db.engine.dialect.name == "postgresql"
    with services.store.db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version()").scalar().startswith("PostgreSQL")
