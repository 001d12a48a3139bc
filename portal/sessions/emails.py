"""The login-code email: text + HTML from ``templates/emails/login_code.*``, in the language of the page the code
was asked from (``portal.i18n``).

The text part ends with the ``@host #code`` line that WebOTP and mobile keyboards use to offer the code for
autofill on the portal's own host (from ``PORTAL_BASE_URL``).
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from math import ceil
from urllib.parse import urlencode, urlsplit

from babel.dates import format_time
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from portal import i18n
from portal.clock import parse_iso
from portal.mail import Mailer, MailMessage, send_in_background
from portal.notifications.branding import email_branding
from portal.organizations import queries as org_queries
from portal.organizations.queries import Organization
from portal.resources import templates_dir
from portal.sessions.service import IssuedCode
from portal.settings import Settings
from portal.templating import install_i18n


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Escaping on for .html only: the text part must show "R&D Tools", not "R&amp;D Tools".
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    return install_i18n(env)


def login_code_email(
    settings: Settings,
    *,
    organization: Organization,
    to: str,
    code: str,
    expires_at: str,
    now: datetime,
    locale: str | None = None,
) -> MailMessage:
    with i18n.use_locale(locale) as active:
        return _login_code_email(
            settings, organization=organization, to=to, code=code, expires_at=expires_at, now=now, locale=active
        )


def _login_code_email(
    settings: Settings,
    *,
    organization: Organization,
    to: str,
    code: str,
    expires_at: str,
    now: datetime,
    locale: str,
) -> MailMessage:
    expires = parse_iso(expires_at)
    minutes = max(1, ceil((expires - now).total_seconds() / 60))
    host = urlsplit(settings.base_url).hostname or "localhost"
    context = {
        "organization": organization,
        "code": code,
        "minutes": minutes,
        # The time in the customer's locale ("14:05", "2:05 PM"); the template says it is UTC.
        "expires_at": format_time(expires, format="short", locale=locale),
        "url": f"{settings.public_base_url}/{organization.slug}/portal/authenticate",
        "host": host,
        "locale": locale,
    } | email_branding(organization)
    env = _environment()
    text = env.get_template("emails/login_code.txt").render(context).rstrip() + "\n"
    html = env.get_template("emails/login_code.html").render(context)
    return MailMessage(
        to=to,
        subject=i18n.gettext("Your sign-in code for %(name)s") % {"name": organization.name},
        text=text,
        html=html,
        console_note=f"Login code for {to} at {organization.slug}: {code} (valid {minutes} min)",
        sender_name=organization.email_sender_name,
        reply_to=org_queries.reply_to(organization),
    )


def send_login_code(
    mailer: Mailer,
    settings: Settings,
    organization: Organization,
    issued: IssuedCode,
    now: datetime,
    *,
    locale: str | None = None,
) -> None:
    """Render and send in a background task: the answer does not wait for (or depend on) the mail server."""
    send_in_background(
        mailer,
        lambda: login_code_email(
            settings,
            organization=organization,
            to=issued.email,
            code=issued.code,
            expires_at=issued.expires_at,
            now=now,
            locale=locale,
        ),
    )


def email_change_email(
    settings: Settings,
    *,
    organization: Organization,
    to: str,
    token: str,
    minutes: int,
    locale: str | None = None,
) -> MailMessage:
    """The verification mail of an email change (``portal.customers.email_change``), to the NEW address: the link
    to the portal's confirmation page and the code the customer API verifies, in the customer's language and the
    seller's brand."""
    with i18n.use_locale(locale) as active:
        context = {
            "organization": organization,
            "code": token,
            "minutes": minutes,
            "url": f"{settings.public_base_url}/{organization.slug}/portal/email-change?{urlencode({'token': token})}",
            "locale": active,
        } | email_branding(organization)
        env = _environment()
        return MailMessage(
            to=to,
            subject=i18n.gettext("Confirm your new email address for %(name)s") % {"name": organization.name},
            text=env.get_template("emails/email_change.txt").render(context).rstrip() + "\n",
            html=env.get_template("emails/email_change.html").render(context),
            console_note=f"Email change code for {to} at {organization.slug}: {token}",
            sender_name=organization.email_sender_name,
            reply_to=org_queries.reply_to(organization),
        )


def send_email_change(
    mailer: Mailer,
    settings: Settings,
    organization: Organization,
    *,
    to: str,
    token: str,
    minutes: int,
    locale: str | None = None,
) -> None:
    """Render and send in a background task, like the sign-in code."""
    send_in_background(
        mailer,
        lambda: email_change_email(
            settings, organization=organization, to=to, token=token, minutes=minutes, locale=locale
        ),
    )
