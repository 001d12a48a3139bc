"""Outgoing mail: the ``Mailer`` protocol, an SMTP sender, the dev "outbox" sender, and background sending.

Senders never raise: a failed delivery is logged and reported as ``False``, so a mail server that is down never
breaks a request. Request handlers do not even wait for them: ``send_in_background`` starts a task (kept
referenced until it finishes) so an answer takes the same time whether or not an email goes out, and sign-in
pages do not leak which addresses have accounts through their timing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

import msgspec

from portal.clock import new_id
from portal.fields import fold_header
from portal.settings import Settings
from portal.tls import smtp_context

log = logging.getLogger("portal.mail")


class MailMessage(msgspec.Struct, frozen=True, kw_only=True):
    """One email: a text part, an optional HTML alternative, and a dev-console note (outbox sender only)."""

    to: str
    subject: str
    text: str
    html: str | None = None
    console_note: str | None = None
    # The organization's From display name (the address stays PORTAL_MAIL_FROM's) and Reply-To (issue 22).
    sender_name: str | None = None
    reply_to: str | None = None


class Mailer(Protocol):
    async def send(self, message: MailMessage) -> bool:
        """Deliver ``message``; ``True`` on success. Never raises for delivery problems."""
        ...


def build_email(message: MailMessage, mail_from: str) -> EmailMessage:
    """The MIME message: ``text/plain`` first, then ``text/html`` as the preferred alternative.

    Every header value is folded to one line (``fields.fold_header``): inputs are refused with line breaks
    today, but a name stored before that rule, or any future path that forgets it, must neither break the
    email (``EmailMessage`` raises on CR/LF, so sign-in mail would stop) nor add a header."""
    email = EmailMessage()
    sender_name = fold_header(message.sender_name or "")
    email["From"] = formataddr((sender_name, parseaddr(mail_from)[1])) if sender_name else mail_from
    # Address headers hold exactly one address: folding "a@x.io\r\nBcc: b@y.io" to one line would still list two.
    if message.reply_to and (reply_to := single_address(message.reply_to)):
        email["Reply-To"] = reply_to
    to = single_address(message.to)
    if to is None:
        raise ValueError("a message goes to exactly one address")
    email["To"] = to
    email["Subject"] = fold_header(message.subject)
    email["Date"] = formatdate(localtime=False, usegmt=True)
    domain = parseaddr(mail_from)[1].rpartition("@")[2] or "localhost"
    email["Message-ID"] = make_msgid(domain=domain)
    email.set_content(message.text)
    if message.html is not None:
        email.add_alternative(message.html, subtype="html")
    return email


def single_address(text: str) -> str | None:
    """``text`` as one plain address (control characters folded), or None when it is not exactly one."""
    addresses = getaddresses([fold_header(text)])
    if len(addresses) != 1 or addresses[0][1].count("@") != 1:
        return None
    return addresses[0][1]


class SMTPMailer:
    """Sends through an SMTP server (STARTTLS, implicit TLS or plain), in a worker thread with a timeout."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.security = settings.smtp_security
        self.username = settings.smtp_username
        self.password = settings.smtp_password
        self.timeout = settings.smtp_timeout
        self.mail_from = settings.mail_from

    async def send(self, message: MailMessage) -> bool:
        email = build_email(message, self.mail_from)
        try:
            await asyncio.to_thread(self._deliver, email)
        except (OSError, smtplib.SMTPException) as exc:
            # The exception text names the server's answer, never the message body (which holds the code).
            log.warning("mail delivery via %s:%s failed: %s: %s", self.host, self.port, type(exc).__name__, exc)
            return False
        return True

    async def deliver(self, message: MailMessage) -> None:
        """Like ``send`` but raises the delivery error (``OSError``/``SMTPException``): the email outbox worker
        records it (``portal outbox``) and retries."""
        await asyncio.to_thread(self._deliver, build_email(message, self.mail_from))

    def _deliver(self, email: EmailMessage) -> None:
        smtp: smtplib.SMTP
        if self.security == "tls":
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=smtp_context())
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=smtp_context())
            if self.username:
                smtp.login(self.username, self.password)
            # The envelope names the one To address: no header of the message can add a recipient.
            smtp.send_message(email, to_addrs=[str(email["To"])])


class OutboxMailer:
    """Dev sender: prints a note (recipient and login code) to the console and writes one ``.eml`` per message."""

    def __init__(self, settings: Settings, *, echo: bool = True) -> None:
        self.directory = settings.outbox_dir
        self.mail_from = settings.mail_from
        self.echo = echo

    async def send(self, message: MailMessage) -> bool:
        email = build_email(message, self.mail_from)
        try:
            path = await asyncio.to_thread(self._write, email)
        except OSError as exc:
            log.warning("could not write mail to the outbox %s: %s", self.directory, exc)
            return False
        if self.echo:
            note = message.console_note or f"Mail to {message.to}: {message.subject}"
            print(f"[outbox] {note}  ({path})", file=sys.stdout, flush=True)
        return True

    def _write(self, email: EmailMessage) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        path = self.directory / f"{stamp}-{new_id()}.eml"
        # The outbox holds live login codes: readable by the owner only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(email.as_bytes())
        return path


def build_mailer(settings: Settings) -> Mailer:
    """The sender ``settings.mail_backend`` names."""
    if settings.mail_backend == "smtp":
        return SMTPMailer(settings)
    return OutboxMailer(settings)


# Tasks started by send_in_background; referenced here so the event loop cannot garbage-collect them mid-send.
_PENDING: set[asyncio.Task[bool]] = set()


def send_in_background(mailer: Mailer, build: Callable[[], MailMessage]) -> asyncio.Task[bool]:
    """Render (``build()``) and send a message in a task; the caller does not wait. Failures are logged."""

    async def run() -> bool:
        try:
            return await mailer.send(build())
        except Exception:
            log.exception("sending mail failed")
            return False

    task = asyncio.get_running_loop().create_task(run())
    _PENDING.add(task)
    task.add_done_callback(_PENDING.discard)
    return task


async def drain(limit_seconds: float = 30.0) -> None:
    """Wait (up to ``limit_seconds``) for background sends started on this loop; used at shutdown."""
    loop = asyncio.get_running_loop()
    tasks = [task for task in _PENDING if task.get_loop() is loop and not task.done()]
    if tasks:
        await asyncio.wait(tasks, timeout=limit_seconds)
