"""Issue 17.10 (rest): invoice numbers cannot be burnt by toggling billing details (at most
``MAX_INVOICE_CORRECTIONS`` corrected invoices per order), and a signed link (receipt, invoice, file download)
minted before its customer was deleted stops working at once, not at the end of its validity."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from polar.v2026_10.client import Polar
from polar.v2026_10.errors import OrderNotEligibleForInvoice

from portal.clock import Clock
from portal.invoices.service import MAX_INVOICE_CORRECTIONS
from portal.settings import Settings
from tests.admin_support import mint_token
from tests.api_server import api_token, served_portal
from tests.browser_helpers import one, query

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


@pytest.fixture
def portal(settings: Settings, clock: Clock) -> Iterator[tuple[str, Settings]]:
    with served_portal(settings, clock=clock) as served:
        yield served


def test_toggling_billing_details_cannot_burn_invoice_numbers(portal: tuple[str, Settings]) -> None:
    base_url, settings = portal
    order = one(settings, "SELECT id FROM orders WHERE external_id = ?", ("acme-ord-alex-toolkit",))["id"]
    assert MAX_INVOICE_CORRECTIONS == 3
    with Polar(access_token=api_token(settings, "acme", "alex@example.com"), base_url=base_url) as polar:
        orders = polar.customer_portal.orders
        orders.generate_invoice(order)
        for turn in range(MAX_INVOICE_CORRECTIONS):
            orders.update(order, billing_name=f"Name {turn % 2}")
            orders.generate_invoice(order)
        orders.update(order, billing_name="One change too many")
        with pytest.raises(OrderNotEligibleForInvoice) as refused:
            orders.generate_invoice(order)
        for turn in range(5):  # toggling on does not help (the last invoice is "Name 0")
            orders.update(order, billing_name=f"Name {1 + turn % 2}")
            with pytest.raises(OrderNotEligibleForInvoice):
                orders.generate_invoice(order)
        current = orders.invoice(order)  # the last issued invoice stays retrievable
    assert "corrected 3 times" in refused.value.error.detail
    numbers = [
        r["invoice_number"] for r in query(settings, "SELECT invoice_number FROM invoices WHERE order_id = ?", (order,))
    ]
    assert len(numbers) == MAX_INVOICE_CORRECTIONS + 1
    counter = one(settings, "SELECT next_invoice_number FROM organizations WHERE slug = 'acme'")[0]
    assert counter == MAX_INVOICE_CORRECTIONS + 2  # no number was taken by the refused attempts
    assert httpx.get(current.url).status_code == 200
    # An unchanged generate is still the no-op it was.
    with Polar(access_token=api_token(settings, "acme", "alex@example.com"), base_url=base_url) as polar:
        polar.customer_portal.orders.update(order, billing_name="Name 0")
        assert polar.customer_portal.orders.generate_invoice(order) is None


def test_signed_links_stop_working_when_the_customer_is_deleted(portal: tuple[str, Settings], clock: Clock) -> None:
    base_url, settings = portal
    order = one(settings, "SELECT id FROM orders WHERE external_id = ?", ("acme-ord-alex-toolkit",))["id"]
    customer = one(settings, "SELECT customer_id FROM orders WHERE id = ?", (order,))["customer_id"]
    with Polar(access_token=api_token(settings, "acme", "alex@example.com", clock=clock), base_url=base_url) as polar:
        orders = polar.customer_portal.orders
        receipt = orders.receipt(order).url
        orders.generate_invoice(order)
        invoice = orders.invoice(order).url
        downloads = [item.file.download.url for item in polar.customer_portal.downloadables.iter_list(limit=10)]  # type: ignore[attr-defined]
    assert downloads
    with httpx.Client(follow_redirects=False) as anonymous:
        assert anonymous.get(receipt).status_code == 200
        assert anonymous.get(invoice).status_code == 200
        hop = anonymous.get(downloads[0])
        assert hop.status_code == 302
        file_url = hop.headers["location"]
        deleted = anonymous.delete(
            f"{base_url}/v1/customers/{customer}", headers={"Authorization": f"Bearer {mint_token(settings)}"}
        )
        assert deleted.status_code == 204, deleted.text
        # At once, well within the links' validity (an hour; a minute for the file URL).
        assert anonymous.get(receipt).status_code == 404
        assert anonymous.get(invoice).status_code == 404
        assert anonymous.get(downloads[0]).status_code == 404
        assert anonymous.get(file_url).status_code == 404
