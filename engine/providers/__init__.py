"""Sending-service adapters behind one `Provider` protocol."""

from engine.providers.base import Message, Provider, SendResult
from engine.providers.engagelab import (
    DEFAULT_BASE_URL,
    EngageLabProvider,
    EngageLabTransport,
)
from engine.providers.factory import ProviderFactory
from engine.providers.null import NullProvider
from engine.providers.smtp import SmtpProvider

__all__ = [
    "DEFAULT_BASE_URL", "EngageLabProvider", "EngageLabTransport", "Message", "NullProvider",
    "Provider", "ProviderFactory", "SendResult", "SmtpProvider",
]
