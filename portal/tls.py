"""The TLS client contexts of the connections Portal opens: processors' APIs and file downloads over httpx, and
the SMTP server. Each is built once per process, on first use.

Building a context loads a whole CA bundle (about 20 ms of CPU). One per call made every email and every
processor call pay for it. A context shared between threads is safe for client connections, and nothing changes one
after it is built. A CA bundle changed on disk is read at the next start, like every other setting."""

from __future__ import annotations

import ssl
from functools import cache


@cache
def https_context() -> ssl.SSLContext:
    """For httpx clients: the context httpx would build itself (``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` when set,
    else certifi's bundle). Pass it as ``verify=``."""
    import httpx  # here, not at the top: a worker that never calls out never loads httpx

    return httpx.create_ssl_context()


@cache
def smtp_context() -> ssl.SSLContext:
    """For SMTP over TLS and STARTTLS: the system's trust store (``ssl.create_default_context()``)."""
    return ssl.create_default_context()
