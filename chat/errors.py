"""Chat's errors are the API's errors: one family for REST and websocket alike."""

from __future__ import annotations

from chat.protocol import Error
from config.errors import ApiError


class ChatError(ApiError):
    """An error reported to the client as a protocol `error` message (or a JSON error body)."""

    def as_message(self, *, request_id: str | None) -> Error:
        return Error(
            request_id=request_id,
            code=self.code,  # type: ignore[arg-type]
            message=self.message,
            retry_after=self.retry_after,
        )
