"""The one way our modules expose an admin HTTP API under ``/_synapse/client/chat500/v1/``.

Every endpoint needs a server admin's access token; anyone else gets 403 ``M_FORBIDDEN``.
Handlers raise ``SynapseError`` for refusals so Synapse renders the Matrix error JSON itself.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from synapse.api.errors import Codes, SynapseError
from synapse.http.server import DirectServeJsonResource
from synapse.http.site import SynapseRequest
from synapse.module_api import ModuleApi

API_PREFIX = "/_synapse/client/chat500/v1"

JsonDict = dict[str, Any]
Handler = Callable[[SynapseRequest, str], Awaitable[tuple[int, JsonDict]]]


async def require_server_admin(api: ModuleApi, request: SynapseRequest) -> str:
    """Return the requesting admin's user id, or refuse the request."""
    requester = await api.get_user_by_req(request)
    user_id = requester.user.to_string()
    if not await api.is_user_admin(user_id):
        raise SynapseError(403, "Server admin access is required", Codes.FORBIDDEN)
    return user_id


def parse_json_body(request: SynapseRequest) -> JsonDict:
    """The request body as a JSON object, or a 400 ``M_BAD_JSON`` naming what is wrong."""
    raw = request.content.read() if request.content is not None else b""
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise SynapseError(400, f"Request body is not valid JSON: {exc}", Codes.BAD_JSON) from exc
    if not isinstance(body, dict):
        raise SynapseError(400, "Request body must be a JSON object", Codes.BAD_JSON)
    return body


def require_field(body: JsonDict, name: str, kind: type | tuple[type, ...]) -> Any:
    """A required body field of the given type, or 400 ``M_INVALID_PARAM`` naming the field."""
    if name not in body:
        raise SynapseError(400, f"Missing field: {name}", Codes.MISSING_PARAM)
    value = body[name]
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise SynapseError(400, f"Invalid field: {name}", Codes.INVALID_PARAM)
    return value


class AdminResource(DirectServeJsonResource):
    """A resource whose handlers all run only for server admins.

    Register one per path prefix with ``register(api, "minors", resource)``; the remainder of
    the path after the prefix is handed to the handler (URL-decoded) as ``subpath``.
    """

    isLeaf = True

    def __init__(self, api: ModuleApi) -> None:
        super().__init__()
        self._api = api
        self._handlers: dict[str, Handler] = {}

    def on(self, method: str, handler: Handler) -> None:
        self._handlers[method.upper()] = handler

    async def _dispatch(self, request: SynapseRequest) -> tuple[int, JsonDict]:
        method = request.method.decode("ascii")
        handler = self._handlers.get(method)
        if handler is None:
            raise SynapseError(405, f"Method {method} not allowed", Codes.UNRECOGNIZED)
        admin_id = await require_server_admin(self._api, request)
        request.chat500_admin_id = admin_id  # type: ignore[attr-defined]
        subpath = "/".join(unquote(p.decode("utf-8")) for p in request.postpath or [])
        return await handler(request, subpath)

    async def _async_render_GET(self, request: SynapseRequest) -> tuple[int, JsonDict]:
        return await self._dispatch(request)

    async def _async_render_POST(self, request: SynapseRequest) -> tuple[int, JsonDict]:
        return await self._dispatch(request)

    async def _async_render_PUT(self, request: SynapseRequest) -> tuple[int, JsonDict]:
        return await self._dispatch(request)

    async def _async_render_DELETE(self, request: SynapseRequest) -> tuple[int, JsonDict]:
        return await self._dispatch(request)


def register(api: ModuleApi, name: str, resource: AdminResource) -> None:
    """Mount ``resource`` at ``/_synapse/client/chat500/v1/<name>``."""
    api.register_web_resource(f"{API_PREFIX}/{name}", resource)
