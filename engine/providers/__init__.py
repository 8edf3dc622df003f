"""Sending-service adapters behind one `Provider` protocol."""

from engine.providers.base import ConnectionSlots, Message, Provider, SendResult
from engine.providers.engagelab import (
    DEFAULT_BASE_URL,
    EngageLabProvider,
    EngageLabTransport,
)
from engine.providers.factory import ProviderFactory
from engine.providers.null import NullProvider
from engine.providers.smtp import SmtpProvider

__all__ = [
    "ConnectionSlots", "DEFAULT_BASE_URL", "EngageLabProvider", "EngageLabTransport", "Message", "NullProvider",
    "Provider", "ProviderFactory", "SendResult", "SmtpProvider",
]
