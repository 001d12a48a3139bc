"""Receipts and invoices as PDF (issue 22): ``?format=pdf`` on the receipt and invoice pages answers a real PDF,
rendered from the same template, whose text has the document's number and amounts; the same authorization as the
HTML page (another customer, signed out, a forged signature: no PDF); the HTML page offers "Download PDF". The first
page is rendered to PNG with pdftoppm (test-artifacts/) to be looked at."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Iterator

import pytest
from bs4 import BeautifulSoup
from litestar import Litestar
from litestar.testing import TestClient
from pypdf import PdfReader

from portal.settings import Settings
from tests.browser_helpers import ARTIFACTS, csrf_token, new_session, one

pytestmark = pytest.mark.seeded  # data_dir: a copy of the demo seed (tests/conftest.py)


@pytest.fixture
def browser(app: Litestar) -> Iterator[TestClient[Litestar]]:
    with TestClient(app, base_url="http://testserver.local") as client:
        client.follow_redirects = False
        yield client


def sign_in(client: TestClient[Litestar], settings: Settings, email: str = "alex@example.com") -> None:
    name, token = new_session(settings, "acme", email)
    client.cookies.set(name, token)


def pdf_text(data: bytes) -> str:
    assert data.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def save_first_page(data: bytes, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / f"{name}.pdf").write_bytes(data)
    if shutil.which("pdftoppm"):
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                "70",
                "-f",
                "1",
                "-l",
                "1",
                "-singlefile",
                str(ARTIFACTS / f"{name}.pdf"),
                str(ARTIFACTS / name),
            ],
            check=True,
        )


def test_receipt_pdf_has_the_receipt_and_its_amounts(browser: TestClient[Litestar], settings: Settings) -> None:
    sign_in(browser, settings)
    order = one(settings, "SELECT id, receipt_number FROM orders WHERE external_id = 'acme-ord-alex-icons'")
    path = f"/acme/portal/orders/{order['id']}/receipt"
    page = BeautifulSoup(browser.get(path).text, "html.parser")
    link = page.select_one("[data-action=download-pdf]")
    assert link is not None and link["href"] == f"{path}?format=pdf" and link.get_text(strip=True) == "Download PDF"
    answer = browser.get(link["href"])
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == f'attachment; filename="receipt-{order["receipt_number"]}.pdf"'
    assert "no-store" in answer.headers["cache-control"]
    text = pdf_text(answer.content)
    for expected in (order["receipt_number"], "Receipt", "Acme Software", "$19.00", "−$5.00", "$14.00", "Rivera"):
        assert expected in text, (expected, text)
    assert "Download PDF" not in text and "Print / Save as PDF" not in text  # no toolbar in the file
    save_first_page(answer.content, "receipt-pdf")


def test_receipt_pdf_follows_the_locale(browser: TestClient[Litestar], settings: Settings) -> None:
    sign_in(browser, settings)
    order = one(settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-icons'")["id"]
    text = pdf_text(browser.get(f"/acme/portal/orders/{order}/receipt?format=pdf&locale=de").content)
    assert "Quittung" in text or "Beleg" in text, text
    assert "19,00" in text


def test_invoice_pdf_and_signed_links(browser: TestClient[Litestar], settings: Settings) -> None:
    sign_in(browser, settings)
    order = one(settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-icons'")["id"]
    assert (
        browser.post(
            f"/acme/portal/orders/{order}/invoice", data={"_csrf_token": csrf_token(browser, "/acme/portal")}
        ).status_code
        == 303
    )
    invoice = one(settings, "SELECT id, invoice_number FROM invoices WHERE order_id = ?", (order,))
    for path in (f"/acme/portal/orders/{order}/invoice", f"/acme/portal/orders/{order}/invoices/{invoice['id']}"):
        page = BeautifulSoup(browser.get(path).text, "html.parser")
        assert page.select_one("[data-action=download-pdf]")["href"] == f"{path}?format=pdf"
        answer = browser.get(f"{path}?format=pdf")
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
        text = pdf_text(answer.content)
        assert invoice["invoice_number"] in text and "Invoice" in text and "$19.00" in text
    save_first_page(answer.content, "invoice-pdf")


def test_pdf_needs_the_same_authorization_as_the_page(browser: TestClient[Litestar], settings: Settings) -> None:
    order = one(settings, "SELECT id FROM orders WHERE external_id = 'acme-ord-alex-icons'")["id"]
    path = f"/acme/portal/orders/{order}/receipt?format=pdf"
    signed_out = browser.get(path)
    assert signed_out.status_code in (302, 303) and b"%PDF" not in signed_out.content
    sign_in(browser, settings, "jordan@example.com")  # another customer of the same seller
    other = browser.get(path)
    assert other.status_code == 404 and b"%PDF" not in other.content
    forged = browser.get(f"/r/receipts/{order}?signature=forged&format=pdf")
    assert forged.status_code == 404 and b"%PDF" not in forged.content


def test_signed_receipt_link_offers_its_pdf(browser: TestClient[Litestar], settings: Settings) -> None:
    from portal.clock import Clock
    from portal.customer_portal.links import document_url

    row = one(settings, "SELECT id, organization_id, customer_id FROM orders WHERE external_id = 'acme-ord-alex-icons'")
    url = document_url(
        settings,
        "receipt",
        organization_id=row["organization_id"],
        customer_id=row["customer_id"],
        document_id=row["id"],
        now=Clock().now(),
    )
    page = BeautifulSoup(browser.get(url.removeprefix(settings.public_base_url)).text, "html.parser")
    href = page.select_one("[data-action=download-pdf]")["href"]
    assert "signature=" in href and href.endswith("format=pdf")
    answer = browser.get(href)
    assert answer.status_code == 200 and answer.content.startswith(b"%PDF-")
