"""The console's emails: a seller's sign-in code and an invitation to an organization's console. Plain text, in
the language of the page that caused them; sent in the background (the answer never waits on the mail server)."""

from __future__ import annotations

from datetime import datetime
from math import ceil

from portal import i18n
from portal.clock import parse_iso
from portal.console.signin import IssuedCode
from portal.mail import Mailer, MailMessage, send_in_background
from portal.settings import Settings


def code_email(settings: Settings, issued: IssuedCode, now: datetime, *, locale: str | None = None) -> MailMessage:
    with i18n.use_locale(locale):
        _ = i18n.gettext
        minutes = max(1, ceil((parse_iso(issued.expires_at) - now).total_seconds() / 60))
        text = "\n\n".join(
            [
                _("Your sign-in code for the seller console is: %(code)s") % {"code": issued.code},
                _("It is valid for %(minutes)s minutes. Enter it on the page where you asked for it:")
                % {"minutes": minutes}
                + f"\n{settings.public_base_url}/console/authenticate",
                _("If you did not ask for it, ignore this email: nobody can sign in without the code."),
            ]
        )
        return MailMessage(
            to=issued.email,
            subject=_("Your seller console sign-in code"),
            text=text + "\n",
            console_note=f"Console code for {issued.email}: {issued.code} (valid {minutes} min)",
        )


def invitation_email(
    settings: Settings, *, to: str, organization_name: str, role: str, invited_by: str, locale: str | None = None
) -> MailMessage:
    with i18n.use_locale(locale):
        _ = i18n.gettext
        role_name = _("owner") if role == "owner" else _("support")
        text = "\n\n".join(
            [
                _("%(who)s invited you to the seller console of %(name)s, as %(role)s.")
                % {"who": invited_by, "name": organization_name, "role": role_name},
                _("Sign in with this email address; we will send you a one-time code:")
                + f"\n{settings.public_base_url}/console",
            ]
        )
        return MailMessage(
            to=to,
            subject=_("You are invited to %(name)s's seller console") % {"name": organization_name},
            text=text + "\n",
            console_note=f"Console invitation for {to} to {organization_name} ({role})",
        )


def send(mailer: Mailer, message: MailMessage) -> None:
    send_in_background(mailer, lambda: message)
