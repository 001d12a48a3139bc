"""``portal check --smtp``: talk to the configured SMTP server the way the mailer will, without sending mail.

Connect (implicit TLS for ``tls``), EHLO, STARTTLS for ``starttls`` (with certificate checks), AUTH when a
username is set, QUIT. Each failure becomes one plain sentence naming the step, the server and what it said;
the password never appears in it.
"""

from __future__ import annotations

import smtplib
import ssl

from portal.settings import Settings
from portal.tls import smtp_context


def check_smtp(settings: Settings) -> list[str]:
    """Problems talking to ``settings``' SMTP server; empty when it accepted the connection (and the login)."""
    where = f"SMTP {settings.smtp_host}:{settings.smtp_port}"
    step = "connect"
    try:
        smtp: smtplib.SMTP
        if settings.smtp_security == "tls":
            smtp = smtplib.SMTP_SSL(
                settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout, context=smtp_context()
            )
        else:
            smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout)
        with smtp:
            step = "EHLO"
            code, reply = smtp.ehlo()
            if code != 250:
                return [f"{where}: EHLO was refused: {code} {reply.decode(errors='replace')}"]
            if settings.smtp_security == "starttls":
                step = "STARTTLS"
                if not smtp.has_extn("starttls"):
                    return [
                        f"{where}: the server does not offer STARTTLS "
                        "(set PORTAL_SMTP_SECURITY=tls for port 465, or none for a loopback relay)"
                    ]
                smtp.starttls(context=smtp_context())
                smtp.ehlo()
            if settings.smtp_username:
                step = "login"
                smtp.login(settings.smtp_username, settings.smtp_password)
            step = "QUIT"
    except smtplib.SMTPAuthenticationError as exc:
        return [f"{where}: login as {settings.smtp_username!r} was refused: {exc.smtp_code} {_text(exc.smtp_error)}"]
    except smtplib.SMTPNotSupportedError:
        return [f"{where}: the server does not support AUTH; leave PORTAL_SMTP_USERNAME empty or use another server"]
    except smtplib.SMTPResponseException as exc:
        return [f"{where}: {step} failed: {exc.smtp_code} {_text(exc.smtp_error)}"]
    except ssl.SSLError as exc:
        return [f"{where}: TLS failed during {step}: {exc.reason or exc}"]
    except TimeoutError:
        return [f"{where}: no answer within {settings.smtp_timeout} s during {step}"]
    except (OSError, smtplib.SMTPException) as exc:
        return [f"{where}: cannot {step}: {type(exc).__name__}: {exc}"]
    return []


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
