"""The pieces behind the checks, alone: the review cache, the shipped ClusterRoles against the server's
permission table, the sandbox policy against the shipped roles, and when install renews certificates."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import pytest

from winspect.deploy.manifests import render
from winspect.deploy.pki import make_server_tls
from winspect.deploy.tls_objects import configmap_object, renewal_reason, secret_object
from winspect.sandbox.kubeapi.auth import (
    NOBODY_USER,
    SERVER_USER,
    VIEWER_USER,
    ResourceAttributes,
    sandbox_identities,
    sandbox_policy,
    sandbox_server_identity,
)
from winspect.server.auth import API_GROUP, CAPTURE_ROLE, PERMISSIONS, RESOURCE, VIEWER_ROLE, Permission
from winspect.server.auth_cache import ReviewCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cache_keeps_allowed_answers_longer_than_refusals() -> None:
    clock = Clock()
    cache = ReviewCache(ttl=30, negative_ttl=5, clock=clock)
    cache.put("ok", True, positive=True)
    cache.put("no", False, positive=False)
    clock.now += 4.9
    assert cache.get("ok") is True and cache.get("no") is False
    clock.now += 0.2
    assert cache.get("no") is None and cache.get("ok") is True
    clock.now += 25
    assert cache.get("ok") is None
    assert len(cache) == 0


def test_cache_is_bounded_and_forgets_the_least_recently_used() -> None:
    cache = ReviewCache(max_entries=2, clock=Clock())
    cache.put("a", 1, positive=True)
    cache.put("b", 2, positive=True)
    assert cache.get("a") == 1  # a is now the most recently used
    cache.put("c", 3, positive=True)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_cache_off() -> None:
    cache = ReviewCache(ttl=0, negative_ttl=0, clock=Clock())
    cache.put("a", True, positive=True)
    assert cache.get("a") is None


def _rules(role: str) -> list[dict[str, Any]]:
    obj = next(o for o in render().objects if o["kind"] == "ClusterRole" and o["metadata"]["name"] == role)
    rules: list[dict[str, Any]] = obj["rules"]
    return rules


def _grants(role: str, permission: Permission) -> bool:
    resource = f"{RESOURCE}/{permission.subresource}"
    return any(
        API_GROUP in r["apiGroups"] and resource in r["resources"] and permission.verb in r["verbs"]
        for r in _rules(role)
    )


ALL_PERMISSIONS = sorted({p for needed in PERMISSIONS.values() for p in needed}, key=str)


@pytest.mark.parametrize("permission", ALL_PERMISSIONS, ids=str)
def test_shipped_roles_grant_what_the_server_checks(permission: Permission) -> None:
    assert _grants(CAPTURE_ROLE, permission)
    assert _grants(VIEWER_ROLE, permission) == (permission.verb == "get")
    assert permission.role == (VIEWER_ROLE if permission.verb == "get" else CAPTURE_ROLE)


def test_every_call_has_a_permission() -> None:
    from winspect.v1 import winspect_pb2 as pb

    assert set(PERMISSIONS) == set(pb.DESCRIPTOR.services_by_name["NodeInspector"].methods_by_name)


@pytest.mark.parametrize("permission", ALL_PERMISSIONS, ids=str)
def test_sandbox_policy_follows_the_shipped_roles(permission: Permission) -> None:
    identities = {i.user.username: i.user for i in sandbox_identities()}
    server = sandbox_server_identity()
    policy = sandbox_policy(sandbox_identities(), server)
    attrs = ResourceAttributes(
        permission.verb, RESOURCE, API_GROUP, "", "aksnpwin000000", permission.subresource
    )
    assert policy.authorize(identities[VIEWER_USER], attrs).allowed == _grants(VIEWER_ROLE, permission)
    assert not policy.authorize(identities[NOBODY_USER], attrs).allowed
    assert not policy.authorize(server.user, attrs).allowed
    review = ResourceAttributes("create", "tokenreviews", "authentication.k8s.io")
    assert policy.authorize(server.user, review).allowed and server.user.username == SERVER_USER
    assert not policy.authorize(identities[VIEWER_USER], review).allowed


def _data(obj: dict[str, Any]) -> dict[str, str]:
    data: dict[str, str] = obj["data"]
    return data


def test_install_keeps_good_certificates_and_renews_others() -> None:
    tls = make_server_tls()
    secret, ca = _data(secret_object(tls)), _data(configmap_object(tls))
    assert renewal_reason(secret, ca) is None
    assert renewal_reason(None, None) == "none yet"
    assert renewal_reason(None, ca) == "Secret winspect-tls is missing"
    assert renewal_reason(secret, None) == "ConfigMap winspect-ca is missing"
    other = _data(configmap_object(make_server_tls()))
    assert (
        renewal_reason(secret, other)
        == "the certificate of Secret winspect-tls is not signed by the CA of ConfigMap winspect-ca"
    )
    late = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=720)
    assert renewal_reason(secret, ca, now=late) == f"the certificate expires {tls_expiry(secret):%Y-%m-%d}"
    wrong_name = make_server_tls(names=("example.com",))
    assert renewal_reason(_data(secret_object(wrong_name)), _data(configmap_object(wrong_name))) == (
        "the certificate does not name winspectserv.winspect-system.svc"
    )
    assert renewal_reason({"tls.crt": base64.b64encode(b"junk").decode(), "tls.key": "x"}, ca) == (
        "Secret winspect-tls or ConfigMap winspect-ca holds no valid certificate"
    )


def tls_expiry(secret: dict[str, str]) -> datetime.datetime:
    from winspect.deploy.pki import certificate_info

    return certificate_info(base64.b64decode(secret["tls.crt"])).not_after
