"""One piece of work with the settings' Kubernetes cluster: connect, work, close."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def with_cluster(settings: Any, work: Callable[[Any], T]) -> T:
    """`work(cluster)` with a Cluster of the settings' kubeconfig, context and namespace."""
    from winspect.kube.cluster import Cluster
    from winspect.kube.kubeconfig import resolve_config

    resolved = resolve_config(settings.kubeconfig, settings.context, settings.namespace)
    cluster = Cluster(resolved, settings.timeout)
    try:
        return work(cluster)
    finally:
        cluster.close()
