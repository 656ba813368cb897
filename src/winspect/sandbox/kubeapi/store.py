"""An in-memory object store: complete API objects by resource, namespace and name."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from typing import Any

from winspect.sandbox.kubeapi.resources import ResourceType, by_kind

Obj = dict[str, Any]


class ObjectStore:
    """Thread-safe; every add gets the next resourceVersion, as etcd would give."""

    def __init__(self, objects: Iterable[Obj] = ()) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str, str], Obj] = {}
        self._rv = 1
        for obj in objects:
            self.put(obj)

    def put(self, obj: Obj) -> Obj:
        """Store `obj` (a dict with kind and metadata.name), replacing one of the same name."""
        rt = by_kind(obj["kind"])
        meta = obj["metadata"]
        ns = meta.get("namespace", "") if rt.namespaced else ""
        if rt.namespaced and not ns:
            raise ValueError(f"{rt.kind} {meta['name']} has no namespace")
        # Stored without kind/apiVersion: list items carry neither; a get adds them back.
        stored = {k: copy.deepcopy(v) for k, v in obj.items() if k not in ("kind", "apiVersion")}
        with self._lock:
            self._rv += 1
            stored["metadata"]["resourceVersion"] = str(self._rv)
            self._objects[(rt.plural, ns, meta["name"])] = stored
        return copy.deepcopy(stored)

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        with self._lock:
            obj = self._objects.get((rt.plural, namespace if rt.namespaced else "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, rt: ResourceType, namespace: str = "") -> tuple[list[Obj], str]:
        """Objects of one type (in `namespace`, or all when empty) in etcd key order, and the list RV."""
        with self._lock:
            items = [
                copy.deepcopy(obj)
                for (plural, ns, _), obj in sorted(self._objects.items())
                if plural == rt.plural and (not namespace or ns == namespace)
            ]
            return items, str(self._rv)
