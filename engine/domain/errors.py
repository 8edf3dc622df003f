"""One exception base for the whole product; every subclass carries a stable code."""

from __future__ import annotations

from typing import Any


class EdmError(Exception):
    """Base of every error the product raises on purpose."""

    code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, field: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = dict(details or {})
        if field is not None:
            self.details.setdefault("field", field)


class ValidationError(EdmError):
    code = "VALIDATION_ERROR"


class NotFound(EdmError):
    code = "NOT_FOUND"


class Conflict(EdmError):
    code = "CONFLICT"


class Unauthorized(EdmError):
    code = "UNAUTHORIZED"


class Forbidden(EdmError):
    code = "FORBIDDEN"


class InvalidCredentials(EdmError):
    code = "INVALID_CREDENTIALS"


class TooManyAttempts(EdmError):
    code = "TOO_MANY_ATTEMPTS"


class QuotaInsufficient(EdmError):
    code = "QUOTA_INSUFFICIENT"


class SenderInUse(EdmError):
    code = "SENDER_IN_USE"


class InvalidState(EdmError):
    """The object exists but is in a state that does not allow the operation."""

    code = "INVALID_STATE"


class Unprocessable(EdmError):
    """Schema-valid but unusable, by a rule no JSON Schema states (a time zone that does not
    exist, a window whose start is not before its end, a ramp that goes down, a secret or
    threshold the stored kind does not take): 422, never 400 (400 = the document refuses it)."""

    code = "UNPROCESSABLE"


class TemplateError(EdmError):
    code = "TEMPLATE_ERROR"


class ConfigError(EdmError):
    code = "CONFIG_ERROR"


class ServiceUnavailable(EdmError):
    code = "SERVICE_UNAVAILABLE"


class UnsupportedMediaType(EdmError):
    code = "UNSUPPORTED_MEDIA_TYPE"


class ConcurrentCampaignLimit(EdmError):
    """The owner already has as many active campaigns as EDM_MAX_CONCURRENT_CAMPAIGNS allows."""

    code = "CONCURRENT_CAMPAIGN_LIMIT"


class ServiceBusy(EdmError):
    """The service's interval did not free a slot in time; `details.retry_after` says when to try."""

    code = "SERVICE_BUSY"


class TemplateInUse(EdmError):
    """The template is used by a pending, running or paused campaign."""

    code = "TEMPLATE_IN_USE"


class LastAdmin(EdmError):
    """The change would leave no enabled administrator."""

    code = "LAST_ADMIN"


class ServiceInUse(EdmError):
    """A running or paused campaign may still send through the service."""

    code = "SERVICE_IN_USE"


class UserHasCampaigns(EdmError):
    """The user still has pending, running or paused campaigns."""

    code = "USER_HAS_CAMPAIGNS"
