"""A sandbox Kubernetes API over the emulator's 3+1 node cluster, served in-process for the module."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
from support.sandbox import WINDOWS_ADDRESSES, Api

from winspect.emulator.model import build_cluster
from winspect.sandbox.kubeapi.auth import sandbox_identities, sandbox_policy
from winspect.sandbox.kubeapi.kubeconfig import write_kubeconfig
from winspect.sandbox.kubeapi.server import KubeApiServer
from winspect.sandbox.kubeapi.store import ObjectStore
from winspect.sandbox.kubeapi.tls import make_tls
from winspect.sandbox.objects import cluster_objects


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    tmp = tmp_path_factory.mktemp("kubeapi")
    cluster = build_cluster(3, 1, seed=0, windows_addresses=WINDOWS_ADDRESSES)
    tls = make_tls(["127.0.0.1"], ["localhost"])
    ca, crt, key = tls.write(tmp / "pki")
    identities = sandbox_identities()
    store = ObjectStore()
    server = KubeApiServer(store, sandbox_policy(identities), crt, key).start()
    for obj in cluster_objects(cluster, ca_pem=tls.ca_pem, apiserver=f"{server.host}:{server.port}"):
        store.put(obj)
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", server.url, tls.ca_pem, identities)
    context = ssl.create_default_context(cadata=tls.ca_pem.decode())
    try:
        yield Api(server.url, cluster, {i.user.username: i for i in identities}, kubeconfig, ca, context)
    finally:
        server.stop()
