"""The errors a request can end in; the API renders each as {"error": {code, message, details}}."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class InvalidJson(ApiError):
    status, code = 400, "invalid_json"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class Conflict(ApiError):
    status, code = 409, "conflict"


class CreditExceeded(Conflict):
    code = "credit_exceeds_invoice"


class SellerMissing(Conflict):
    code = "seller_missing"


class EInvoiceUnavailable(Conflict):
    code = "e_invoice_unavailable"


class WrongState(Conflict):
    """The thing exists but its state does not allow this (approving what is no draft,
    editing a change already applied)."""

    code = "wrong_state"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(ApiError):
    status, code = 422, "validation_error"

    @classmethod
    def from_pydantic(cls, exc: ValidationError, prefix: str = "invalid") -> ValidationFailed:
        """Pydantic's errors as details: loc, msg (without pydantic's "Value error, "), type."""
        details = [
            {
                "loc": [str(p) for p in e["loc"]],
                "msg": e["msg"].removeprefix("Value error, "),
                "type": e["type"],
            }
            for e in exc.errors(include_url=False, include_input=False, include_context=False)
        ]
        fields = ", ".join(".".join(d["loc"]) or "body" for d in details)
        return cls(f"{prefix} {fields}", details)

    @classmethod
    def field(cls, loc: str, message: str, kind: str = "value_error") -> ValidationFailed:
        """One bad field, named the way pydantic names them, so clients parse one shape."""
        return cls(f"{loc}: {message}", [{"loc": loc.split("."), "msg": message, "type": kind}])


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(ApiError):
    status, code = 503, "unavailable"
    retry_after_s = 1


class StoreUnavailable(Unavailable):
    """The database does not answer (restarting, unreachable): a 503 with Retry-After to the
    client, a pause to the worker; nothing is half-written and nothing 2xx was lost."""

    def __init__(self, message: str) -> None:
        super().__init__(f"the database is not reachable, try again shortly ({message})")
