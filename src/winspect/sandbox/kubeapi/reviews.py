"""TokenReview and SubjectAccessReview: the sandbox API's answers from its policy."""

from __future__ import annotations

import json

from winspect.sandbox.kubeapi import resources
from winspect.sandbox.kubeapi.auth import NonResourceAttributes, Policy, ResourceAttributes, UserInfo
from winspect.sandbox.kubeapi.messages import ApiError, Request, Response, bad_request, json_response
from winspect.sandbox.kubeapi.resources import ResourceType
from winspect.sandbox.kubeapi.store import Obj


def review(policy: Policy, rt: ResourceType, req: Request) -> Response:
    """The answer to a TokenReview or SubjectAccessReview."""
    try:
        body = json.loads(req.body or b"{}")
        spec = body["spec"]
        assert isinstance(spec, dict)
    except (ValueError, KeyError, AssertionError):
        raise bad_request(f"the body of the request was not a valid {rt.kind}") from None
    if rt is resources.TOKEN_REVIEW:
        user = policy.authenticate(str(spec.get("token", "")))
        status: Obj = (
            {
                "authenticated": True,
                "user": {"username": user.username, "uid": user.uid, "groups": list(user.groups)},
            }
            if user
            else {"user": {}}
        )
        if user and spec.get("audiences"):
            status["audiences"] = list(spec["audiences"])
    else:
        status = _access_review(policy, spec)
    meta = body.get("metadata") or {}
    return json_response(
        201,
        {
            "kind": rt.kind,
            "apiVersion": rt.api_version,
            "metadata": {"creationTimestamp": None, **meta},
            "spec": spec,
            "status": status,
        },
    )


def _access_review(policy: Policy, spec: Obj) -> Obj:
    ra, nra = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if not isinstance(ra, (dict, type(None))) or not isinstance(nra, (dict, type(None))):
        raise bad_request("the body of the request was not a valid SubjectAccessReview")
    if bool(ra) == bool(nra):
        raise ApiError(
            422,
            "Invalid",
            'SubjectAccessReview.authorization.k8s.io "" is invalid: '
            'spec.resourceAttributes: Invalid value: "null": exactly one of '
            "nonResourceAttributes or resourceAttributes must be specified",
            {"group": "authorization.k8s.io", "kind": "SubjectAccessReview"},
        )
    if not spec.get("user") and not spec.get("groups"):
        raise ApiError(
            422,
            "Invalid",
            'SubjectAccessReview.authorization.k8s.io "" is invalid: '
            'spec.user: Invalid value: "": at least one of user or group must be specified',
            {"group": "authorization.k8s.io", "kind": "SubjectAccessReview"},
        )
    subject = UserInfo(str(spec.get("user", "")), str(spec.get("uid", "")), tuple(spec.get("groups") or ()))
    attrs: ResourceAttributes | NonResourceAttributes
    if ra:
        attrs = ResourceAttributes(
            str(ra.get("verb", "")),
            str(ra.get("resource", "")),
            str(ra.get("group", "")),
            str(ra.get("namespace", "")),
            str(ra.get("name", "")),
            str(ra.get("subresource", "")),
        )
    else:
        assert nra is not None
        attrs = NonResourceAttributes(str(nra.get("verb", "")), str(nra.get("path", "")))
    decision = policy.authorize(subject, attrs)
    return {"allowed": decision.allowed, **({"reason": decision.reason} if decision.reason else {})}
