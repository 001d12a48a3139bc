"""``POST /v1/admin/seed``: the demo document in one transaction, idempotent by external ids; a bad document
changes nothing and lists every problem by path (422); admin tokens only."""

from __future__ import annotations

import base64
import copy
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from portal.settings import Settings
from tests.admin_support import bearer, create_org, mint_token

SEED_DIR = Path(__file__).resolve().parent.parent / "seed"
TABLES = (
    "organizations",
    "products",
    "product_prices",
    "benefits",
    "files",
    "customers",
    "orders",
    "order_items",
    "refunds",
    "subscriptions",
    "benefit_grants",
    "license_keys",
    "license_key_activations",
)


def inline_document() -> dict[str, Any]:
    """seed/demo.json with its files inlined (``content_base64``): the API never reads server paths."""
    document = json.loads((SEED_DIR / "demo.json").read_text())
    for org in document["organizations"]:
        for benefit in org.get("benefits", []):
            for item in benefit.get("files", []):
                if item.get("path"):
                    item["content_base64"] = base64.b64encode((SEED_DIR / item.pop("path")).read_bytes()).decode()
    return document


def counts(settings: Settings) -> dict[str, int]:
    conn = sqlite3.connect(settings.db_path)
    try:
        return {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in TABLES}
    finally:
        conn.close()


@pytest.fixture
def admin(settings: Settings) -> str:
    return mint_token(settings)


def test_seeding_twice_gives_the_same_counts(client: Any, settings: Settings, admin: str) -> None:
    document = inline_document()
    first = client.post("/v1/admin/seed", json=document, headers=bearer(admin))
    assert first.status_code == 201, first.text
    assert first.json()["organizations"] == len(document["organizations"])
    after_first = counts(settings)
    assert after_first["orders"] > 0 and after_first["license_keys"] > 0 and after_first["files"] > 0
    second = client.post("/v1/admin/seed", json=document, headers=bearer(admin))
    assert second.status_code == 201, second.text
    assert counts(settings) == after_first
    orgs = client.get("/v1/organizations/?limit=100", headers=bearer(admin)).json()
    assert orgs["pagination"]["total_count"] == len(document["organizations"])


def test_a_bad_document_changes_nothing_and_lists_every_error(client: Any, settings: Settings, admin: str) -> None:
    client.post("/v1/admin/seed", json=inline_document(), headers=bearer(admin))
    before = counts(settings)
    files_before = sorted(p.name for p in settings.files_dir.rglob("*"))
    bad = copy.deepcopy(inline_document())
    first_org = bad["organizations"][0]
    first_org["name"] = "Renamed"  # valid on its own: must not be applied either
    first_org["customers"].append({"external_id": "new-one", "email": "new@example.com"})
    first_org["products"][0]["prices"][0]["currency"] = "xyz"
    first_org["customers"][0]["email"] = "not-an-email"
    response = client.post("/v1/admin/seed", json=bad, headers=bearer(admin))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    locs = [problem["loc"] for problem in detail]
    assert len(detail) >= 2
    assert all(loc[0] == "body" and loc[1] == "organizations" and loc[2] == 0 for loc in locs)
    assert any("prices" in loc and "currency" in loc for loc in locs)
    assert any("customers" in loc and "email" in loc for loc in locs)
    assert counts(settings) == before
    assert sorted(p.name for p in settings.files_dir.rglob("*")) == files_before
    orgs = client.get("/v1/organizations/?limit=100", headers=bearer(admin)).json()["items"]
    assert "Renamed" not in {org["name"] for org in orgs}


def test_seed_needs_an_admin_token_and_an_object(client: Any, settings: Settings, admin: str) -> None:
    org = create_org(client, admin, "solo")
    org_token = mint_token(settings, org["id"])
    response = client.post("/v1/admin/seed", json=inline_document(), headers=bearer(org_token))
    assert response.status_code == 403
    assert client.post("/v1/admin/seed", json=[1, 2], headers=bearer(admin)).status_code == 422
    typed = client.post("/v1/admin/seed", json={"organizations": [{"slug": 7}]}, headers=bearer(admin))
    assert typed.status_code == 422
    assert typed.json()["detail"][0]["loc"][:3] == ["body", "organizations", 0]
