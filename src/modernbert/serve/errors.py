"""The errors a route answers: TEI's `{"error", "error_type"}` and, on /v1, OpenAI's `{"error": {...}}`."""

from __future__ import annotations

from typing import Any

# TEI's error types and their status codes (text-embeddings-inference, router/src/http/server.rs)
STATUS = {"Unhealthy": 503, "Backend": 424, "Overloaded": 429, "Validation": 422, "Tokenizer": 422, "Empty": 400}
_OPENAI_TYPES = {401: "authentication_error", 429: "rate_limit_error"}


class ApiError(Exception):
    """A request that cannot be served: its status, TEI's error type and a message naming the field.

    status: the HTTP status (default: the one TEI gives `error_type`).
    """

    def __init__(self, error_type: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = STATUS.get(error_type, 500) if status is None else status

    def tei(self) -> dict[str, Any]:
        return {"error": self.message, "error_type": self.error_type}

    def openai(self) -> dict[str, Any]:
        kind = _OPENAI_TYPES.get(self.status, "server_error" if self.status >= 500 else "invalid_request_error")
        return {"error": {"message": self.message, "type": kind, "code": self.status}}


def overloaded() -> ApiError:
    return ApiError("Overloaded", "Model is overloaded: too many requests in flight (--max-concurrent-requests); "
                                  "retry later")


def payload_too_large(size: int | None, limit: int) -> ApiError:
    got = f" ({size} bytes)" if size is not None else ""
    return ApiError("Validation", f"the request body{got} is over the payload limit of {limit} bytes "
                                  "(--payload-limit); send fewer or shorter inputs per request", status=413)
