"""Similar cases on PostgreSQL: the same API tests against a throwaway PostgreSQL server. No pgvector package was
installable here, so these run on the in-process fallback index (faiss) built from the stored vectors, which is
what a server without the extension runs; the start-up message for that case is in test_telehealth_similar_index.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from postgres_server import fresh_database
from test_telehealth_similar import (
    services,
    test_a_gp_sees_own_patients_earlier_cases_only,
    test_a_new_model_version_re_embeds_and_says_so_meanwhile,
    test_clinic_wide_results_are_deidentified_and_audited,
    test_who_may_not_ask,
)

__all__ = [
    "services",
    "test_a_gp_sees_own_patients_earlier_cases_only",
    "test_a_new_model_version_re_embeds_and_says_so_meanwhile",
    "test_clinic_wide_results_are_deidentified_and_audited",
    "test_who_may_not_ask",
]


@pytest.fixture
def telehealth_db_url(postgres_server: str) -> Iterator[str]:
    with fresh_database(postgres_server) as url:
        yield url


def test_postgresql_runs_the_in_process_index(services) -> None:  # noqa: F811 - the imported fixture
    assert services.store.db.engine.dialect.name == "postgresql"
    assert services.similar.runner.index.backend in ("faiss", "exact")
