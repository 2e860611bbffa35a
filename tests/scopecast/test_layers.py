"""The design's arrows, checked on the real import graph (grimp): overlay and telehealth may use perception; stream may
use perception and overlay; perception uses none of them; only the composition root (scopecast/) imports them all."""

from __future__ import annotations

import pytest

grimp = pytest.importorskip("grimp", reason="grimp is in the test extra: pip install -e '.[test]'")

FORBIDDEN = {
    "perception": ("stream", "overlay", "telehealth", "scopecast"),
    "overlay": ("stream", "telehealth", "scopecast"),
    "telehealth": ("stream", "overlay", "scopecast"),
    "stream": ("telehealth", "scopecast"),
}


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("scopecast", "stream", "perception", "overlay", "telehealth")


@pytest.mark.parametrize("low", sorted(FORBIDDEN))
def test_no_arrow_runs_back_up(graph, low):
    wrong = {high: sorted(graph.find_shortest_chains(importer=low, imported=high)) for high in FORBIDDEN[low]}
    assert {high: chains for high, chains in wrong.items() if chains} == {}


def test_the_composition_root_is_the_one_place_that_joins_streaming_and_telehealth(graph):
    assert graph.find_shortest_chains(importer="scopecast", imported="stream")
    assert graph.find_shortest_chains(importer="scopecast", imported="telehealth")


def test_only_the_telehealth_store_touches_the_database():
    """Queries, sessions and tables live in telehealth.store; everything else gets plain records from it."""
    full = grimp.build_graph("scopecast", "stream", "perception", "overlay", "telehealth", include_external_packages=True)
    database_users = full.find_modules_that_directly_import("sqlalchemy")
    tables_users = full.find_modules_that_directly_import("telehealth.store.tables")
    outside = sorted(m for m in database_users | tables_users if not m.startswith("telehealth.store"))
    assert outside == []
