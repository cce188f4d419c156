"""The alert channels' transports: SMTP (``smtplib``) and a JSON webhook (``requests``) — the network side of
:mod:`gateway.services.alerts`, which composes the messages and decides what is notified.

Failures become short texts (:class:`~gateway.services.alerts.NotifyError`, or the per-mail error list) that name
the server's answer or the exception class, never the password, a message body, or the webhook URL (chat webhook
URLs carry their token in the path).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import requests

from gateway.config import Settings
from gateway.services.alert_messages import Mail
from gateway.services.alerts import NotifyError

#: Seconds to wait for the SMTP server or the webhook receiver.
TIMEOUT = 30.0


class SmtpTransport:
    """One SMTP session per round: connect, STARTTLS and log in when configured, send each mail."""

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        starttls: bool = False,
        user: str = "",
        password: str = "",
        sender: str = "edoc-gateway@localhost",
        timeout: float = TIMEOUT,
    ) -> None:
        self.host, self.port, self.starttls = host, port, starttls
        self.user, self._password, self.sender, self.timeout = user, password, sender, timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpTransport | None:
        if not settings.smtp_host:
            return None
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            starttls=settings.smtp_starttls,
            user=settings.smtp_user,
            password=settings.smtp_password,
            sender=settings.smtp_from,
        )

    def send(self, mails: Sequence[Mail]) -> list[str | None]:
        try:
            client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        except (OSError, smtplib.SMTPException) as exc:
            return [f"SMTP {self.host}:{self.port} unreachable ({_safe(exc)})"] * len(mails)
        try:
            self._open(client)
        except (OSError, smtplib.SMTPException) as exc:
            client.close()
            return [f"SMTP {self.host}:{self.port} session refused ({_safe(exc)})"] * len(mails)
        results: list[str | None] = []
        with client:
            for mail in mails:
                try:
                    client.send_message(mail.message(self.sender))
                    results.append(None)
                except (OSError, smtplib.SMTPException) as exc:
                    results.append(f"not sent ({_safe(exc)})")
        return results

    def _open(self, client: smtplib.SMTP) -> None:
        client.ehlo()
        if self.starttls:
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if self.user:
            client.login(self.user, self._password)


class WebhookPoster:
    """POSTs one JSON document per round; any 2xx answer is taken."""

    def __init__(self, url: str, *, timeout: float = TIMEOUT) -> None:
        self._url = url
        self.timeout = timeout
        self._session = requests.Session()

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookPoster | None:
        return cls(settings.alert_webhook_url) if settings.alert_webhook_url else None

    def post(self, payload: Mapping[str, Any]) -> None:
        try:
            answer = self._session.post(self._url, json=dict(payload), timeout=self.timeout)
        except requests.RequestException as exc:
            raise NotifyError(f"receiver unreachable ({type(exc).__name__})") from None
        if not 200 <= answer.status_code < 300:
            raise NotifyError(f"receiver answered HTTP {answer.status_code}")

    def close(self) -> None:
        self._session.close()


def _safe(exc: BaseException) -> str:
    """The exception class, and the SMTP server's code and answer when there is one (never our own input)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{type(exc).__name__} {exc.smtp_code} {text[:200]}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return f"{type(exc).__name__}: {len(exc.recipients)} recipient(s) refused"
    return type(exc).__name__


__all__ = ["SmtpTransport", "WebhookPoster"]
