"""Request handling of the sandbox API: routing, authN/authZ, get/list/watch.

`ApiHandler.handle` maps one request to one `Response` with no socket in
sight; `server.py` puts it behind HTTPS. Discovery documents are in
`discovery`, token and access reviews in `reviews`.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from winspect.kube.selectors import (
    SelectorError,
    field_value,
    parse_field_selector,
    parse_label_selector,
)
from winspect.sandbox.kubeapi import portforward, resources, tables
from winspect.sandbox.kubeapi.auth import (
    NonResourceAttributes,
    Policy,
    ResourceAttributes,
    UserInfo,
)
from winspect.sandbox.kubeapi.discovery import non_resource
from winspect.sandbox.kubeapi.messages import (
    JSON,
    METHOD_VERBS,
    ApiError,
    Request,
    Response,
    bad_request,
    json_response,
    not_found_path,
)
from winspect.sandbox.kubeapi.resources import ResourceType
from winspect.sandbox.kubeapi.reviews import review
from winspect.sandbox.kubeapi.store import Obj, ObjectStore


@dataclass(frozen=True)
class _Route:
    rt: ResourceType
    namespace: str
    name: str
    subresource: str


class ApiHandler:
    """Everything the API answers, over one store and one policy."""

    def __init__(self, store: ObjectStore, policy: Policy, server_address: str = "") -> None:
        self.store = store
        self.policy = policy
        self.server_address = server_address
        self.stopping = threading.Event()
        # Port-forwards: each node's "localhost" (where its server listens), and those open.
        self.node_hosts: dict[str, str] = {}
        self.bridges = portforward.Bridges()

    # ------------------------------------------------------------ entry

    def handle(self, req: Request) -> tuple[Response, UserInfo | None]:
        """The response to `req` and who made it (None when unauthenticated)."""
        user: UserInfo | None = None
        try:
            user = self._authenticate(req)
            return self._dispatch(req, user), user
        except ApiError as e:
            return json_response(e.code, e.status()), user

    def upgrade(self, req: Request) -> tuple[Response | portforward.ForwardTarget, UserInfo | None]:
        """A WebSocket upgrade: where its port-forward goes, or the error response (and who asked)."""
        user: UserInfo | None = None
        try:
            user = self._authenticate(req)
            route = portforward.portforward_route(req.target)
            if route is None or req.method != "GET":
                raise ApiError(400, "BadRequest", "the sandbox upgrades only GET .../pods/NAME/portforward")
            namespace, name = route
            for verb in ("get", "create"):
                self._authorize(user, ResourceAttributes(verb, "pods", "", namespace, name, "portforward"))
            port = portforward.requested_port(req.target)
            pod = self.store.get(resources.by_kind("Pod"), namespace, name)
            return portforward.target_of(pod, namespace, name, port, self.node_hosts), user
        except ApiError as e:
            return json_response(e.code, e.status()), user

    def _authenticate(self, req: Request) -> UserInfo:
        auth = req.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        user = (
            self.policy.authenticate(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        )
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user

    def _authorize(self, user: UserInfo, attrs: ResourceAttributes | NonResourceAttributes) -> None:
        if not self.policy.authorize(user, attrs).allowed:
            details: dict[str, Any] = {}
            if isinstance(attrs, ResourceAttributes):
                if attrs.name:
                    details["name"] = attrs.name
                if attrs.group:
                    details["group"] = attrs.group
                details["kind"] = attrs.resource
            raise ApiError(403, "Forbidden", attrs.forbidden_message(user.username), details)

    # ------------------------------------------------------------ routing

    def _dispatch(self, req: Request, user: UserInfo) -> Response:
        url = urlsplit(req.target)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] == ["api"] and len(parts) > 2 and parts[1] == "v1":
            return self._resource(req, user, "", "v1", parts[2:], query)
        if parts[:1] == ["apis"] and len(parts) > 3:
            return self._resource(req, user, parts[1], parts[2], parts[3:], query)
        verb = "get" if req.method in ("GET", "HEAD") else METHOD_VERBS.get(req.method, req.method.lower())
        self._authorize(user, NonResourceAttributes(verb, url.path))
        if req.method != "GET":
            raise ApiError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        return non_resource(parts, self.server_address)

    @staticmethod
    def _route(group: str, version: str, rest: list[str]) -> tuple[str, str, str, str]:
        """(plural, namespace, name, subresource) of a resource path below /api/v1 or /apis/g/v."""
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            ns, rest = rest[1], rest[2:]
        else:
            ns = ""
        if len(rest) > 3:
            raise not_found_path()
        plural, name, sub = [*rest, "", ""][:3]
        return plural, ns, name, sub

    def _resource(
        self, req: Request, user: UserInfo, group: str, version: str, rest: list[str], query: dict[str, str]
    ) -> Response:
        plural, ns, name, sub = self._route(group, version, rest)
        watch = query.get("watch", "") in ("1", "true")
        if req.method in ("GET", "HEAD"):
            verb = "get" if name else ("watch" if watch else "list")
        elif req.method == "DELETE" and not name:
            verb = "deletecollection"
        else:
            verb = METHOD_VERBS.get(req.method, req.method.lower())
        # A namespace is in itself, as far as authorization is concerned.
        authz_ns = name if plural == "namespaces" and not group else ns
        self._authorize(user, ResourceAttributes(verb, plural, group, authz_ns, name, sub))
        rt = resources.find(group, version, plural)
        if (
            rt is None
            or (name and rt.namespaced and not ns)
            or (ns and not rt.namespaced)
            or sub not in ("", "status")
        ):
            raise not_found_path()
        if verb not in rt.verbs:
            raise ApiError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        if rt in resources.REVIEWS:
            return review(self.policy, rt, req)
        route = _Route(rt, ns, name, sub)
        fmt = negotiate(req.headers.get("accept", ""))
        if name:
            return self._get(route, fmt, query)
        return self._list(route, fmt, query, watch)

    # ------------------------------------------------------------ get / list / watch

    def _get(self, route: _Route, fmt: tuple[str, str], query: dict[str, str]) -> Response:
        rt = route.rt
        obj = self.store.get(rt, route.namespace, route.name)
        if obj is None:
            details = {"name": route.name, **({"group": rt.group} if rt.group else {}), "kind": rt.plural}
            qualified = f"{rt.plural}.{rt.group}" if rt.group else rt.plural
            raise ApiError(404, "NotFound", f'{qualified} "{route.name}" not found', details)
        kind, version = fmt
        if kind == "table":
            return json_response(
                200,
                tables.to_table(
                    rt,
                    [obj],
                    {"resourceVersion": obj["metadata"]["resourceVersion"]},
                    version,
                    query.get("includeObject", "Metadata"),
                ),
            )
        if kind == "partial":
            return json_response(
                200,
                {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": f"meta.k8s.io/{version}",
                    "metadata": obj["metadata"],
                },
            )
        return json_response(200, {"kind": rt.kind, "apiVersion": rt.api_version, **obj})

    def _select(self, route: _Route, query: dict[str, str]) -> tuple[list[Obj], str]:
        rt = route.rt
        try:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"), rt.supports_field)
        except SelectorError as e:
            raise bad_request(str(e)) from None
        items, rv = self.store.list(rt, route.namespace)
        keys = [r.key for r in fields.requirements]
        return [
            o
            for o in items
            if labels.matches_labels(o["metadata"].get("labels", {}))
            and fields.matches_fields({k: field_value(o, k) for k in keys})
        ], rv

    def _list(self, route: _Route, fmt: tuple[str, str], query: dict[str, str], watch: bool) -> Response:
        rt = route.rt
        items, rv = self._select(route, query)
        if watch:
            return self._watch(rt, items, query)
        meta: Obj = {"resourceVersion": rv}
        start = _decode_continue(query.get("continue", ""))
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise bad_request(f"limit: Invalid value: {query['limit']!r}: must be an integer") from None
        if start:
            items = items[start:]
        if 0 < limit < len(items):
            meta["continue"] = base64.urlsafe_b64encode(json.dumps({"o": start + limit}).encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        kind, version = fmt
        if kind == "table":
            return json_response(
                200, tables.to_table(rt, items, meta, version, query.get("includeObject", "Metadata"))
            )
        if kind == "partial":
            return json_response(
                200,
                {
                    "kind": "PartialObjectMetadataList",
                    "apiVersion": f"meta.k8s.io/{version}",
                    "metadata": meta,
                    "items": [
                        {
                            "kind": "PartialObjectMetadata",
                            "apiVersion": f"meta.k8s.io/{version}",
                            "metadata": o["metadata"],
                        }
                        for o in items
                    ],
                },
            )
        # Like the real server, list items carry neither kind nor apiVersion.
        return json_response(
            200, {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}
        )

    def _watch(self, rt: ResourceType, items: list[Obj], query: dict[str, str]) -> Response:
        """ADDED for every current object, then silence until timeoutSeconds (the store does not change)."""
        try:
            timeout = float(query.get("timeoutSeconds") or 1800)
        except ValueError:
            raise bad_request("timeoutSeconds: must be an integer") from None

        def events() -> Iterator[bytes]:
            for obj in items:
                event = {"type": "ADDED", "object": {"kind": rt.kind, "apiVersion": rt.api_version, **obj}}
                yield json.dumps(event, separators=(",", ":")).encode() + b"\n"
            self.stopping.wait(timeout)

        return Response(200, stream=events())


def negotiate(accept: str) -> tuple[str, str]:
    """("plain"|"table"|"partial", meta.k8s.io version) for an Accept header; 406 when nothing fits."""
    if not accept.strip():
        return ("plain", "")
    for part in accept.split(","):
        media, *raw = [p.strip() for p in part.split(";")]
        params = dict(p.split("=", 1) for p in raw if "=" in p)
        if media not in (JSON, "*/*", "application/*"):
            continue
        as_ = params.get("as")
        if not as_:
            return ("plain", "")
        version = params.get("v", "")
        if params.get("g") == "meta.k8s.io" and version in ("v1", "v1beta1"):
            if as_ == "Table":
                return ("table", version)
            if as_ in ("PartialObjectMetadata", "PartialObjectMetadataList"):
                return ("partial", version)
    raise ApiError(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, "
        "application/json;as=Table;v=v1;g=meta.k8s.io",
    )


def _decode_continue(token: str) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["o"]
        if not isinstance(offset, int) or offset < 0:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise bad_request(f"continue key is not valid: {token!r}") from None
