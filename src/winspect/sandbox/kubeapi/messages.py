"""The sandbox API's requests, responses and errors (answered with a Status object)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from winspect.sandbox.kubeapi.store import Obj

JSON = "application/json"
METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass
class Response:
    code: int
    body: bytes = b""
    content_type: str = JSON
    # A watch: chunks written as they come, after the headers.
    stream: Iterator[bytes] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Request:
    method: str
    target: str  # path and query as sent
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""


class ApiError(Exception):
    """A failure answered with a Status object."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        out: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            out["details"] = self.details
        out["code"] = self.code
        return out


def json_response(code: int, obj: Any) -> Response:
    return Response(code, json.dumps(obj, separators=(",", ":")).encode())


def not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)
