"""``lanterne-server digest``: send the day's digests through the admin's relay
(server/domain/digest.py says what they say; deploy/lanterne-digest.timer when).

Over SMTP with STARTTLS, always: a relay that does not offer it is refused
before anything is sent, and its certificate must verify (``[smtp] ca_file``
or the system's store) for the relay's name. The standard library does the
protocol (smtplib) and the TLS (ssl).

Each mail is marked sent (its day) only once the relay accepted it, one
journalist at a time: after a failure, running the command again sends only
the mails still due, each the same as it would have been. A run that fails
exits non-zero; the timer's service retries (deploy/README.md, "The daily digest").
"""

from __future__ import annotations

import datetime
import email.utils
import secrets
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage

from server.domain.digest import Digest, due
from server.settings import SMTP_PASSWORD_ENV, SmtpConfig
from server.store.protocols import DigestStore

# EHLO name: an address literal, not the machine's name (which relays copy into
# the Received: header that reaches the mailbox).
EHLO_NAME = "[127.0.0.1]"
TIMEOUT_SECONDS = 60


class DigestError(Exception):
    """The digest could not be sent; the message says why (nothing was sent
    to the journalists it names, or to anyone)."""


@dataclass(frozen=True)
class DigestReport:
    sent: list[str]  # journalists' names
    already: int  # journalists whose digest went out earlier today


def message(digest: Digest, sender: str) -> EmailMessage:
    """The mail, with headers of the same length whatever it says: the Date is
    the day at 00:00 UTC (no finer time), the Message-ID random hex."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = digest.subscription.address
    msg["Subject"] = digest.subject
    day = datetime.datetime.fromisoformat(digest.day).replace(tzinfo=datetime.UTC)
    msg["Date"] = email.utils.format_datetime(day)
    domain = sender.rpartition("@")[2]
    msg["Message-ID"] = f"<{secrets.token_hex(16)}@{domain}>"
    msg.set_content(digest.body, charset="us-ascii", cte="7bit")
    return msg


def tls_context(config: SmtpConfig) -> ssl.SSLContext:
    """Certificates checked, for the relay's name, against the configured CA or the system's."""
    try:
        context = ssl.create_default_context(
            cafile=None if config.ca_file is None else str(config.ca_file)
        )
    except (OSError, ssl.SSLError) as exc:
        raise DigestError(f"[smtp] ca_file {config.ca_file}: {exc}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def send_due(
    store: DigestStore,
    config: SmtpConfig,
    today: str,
    environ: Mapping[str, str],
) -> DigestReport:
    """Send every digest still due today; DigestError if the relay cannot take them."""
    digests = due(store, today)
    already = len(store.digest_subscriptions()) - len(digests)
    if not digests:
        return DigestReport([], already)
    password = environ.get(SMTP_PASSWORD_ENV)
    if config.username is not None and not password:
        raise DigestError(f"[smtp] names a username but {SMTP_PASSWORD_ENV} is not set")
    messages = [(d, message(d, config.sender)) for d in digests]
    context = tls_context(config)
    sent: list[str] = []
    try:
        with smtplib.SMTP(
            config.host, config.port, local_hostname=EHLO_NAME, timeout=TIMEOUT_SECONDS
        ) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise DigestError(
                    f"the relay {config.host}:{config.port} does not offer STARTTLS:"
                    " refusing to send in clear"
                )
            smtp.starttls(context=context)
            smtp.ehlo()
            if config.username is not None:
                assert password is not None
                smtp.login(config.username, password)
            for digest, msg in messages:
                smtp.send_message(msg)
                store.mark_digest_sent(digest.subscription.journalist_id, today)
                sent.append(digest.subscription.name)
    except DigestError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise DigestError(
            f"the relay's certificate does not verify ({exc.verify_message}): nothing more sent"
            + _so_far(sent)
        ) from None
    except (smtplib.SMTPException, ssl.SSLError, OSError) as exc:
        raise DigestError(
            f"the relay {config.host}:{config.port} failed: {type(exc).__name__}: {exc}"
            + _so_far(sent)
        ) from None
    return DigestReport(sent, already)


def _so_far(sent: list[str]) -> str:
    if not sent:
        return " (no digest was sent)"
    return f" (sent before the failure: {', '.join(sent)}; run again to send the others)"
