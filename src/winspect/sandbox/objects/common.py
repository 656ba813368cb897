"""What every sandbox object builder shares: deterministic ids and timestamps, and metadata."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

Obj = dict[str, Any]


def _ts(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class ObjectIds:
    """Deterministic uids, hex ids and timestamps for one cluster model."""

    def __init__(self, seed: int, now: datetime) -> None:
        self.seed = seed
        self.now = now.replace(microsecond=0)

    def uid(self, *parts: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"winspect-sandbox/{self.seed}/" + "/".join(parts)))

    def hex(self, n: int, *parts: str) -> str:
        return hashlib.sha256(f"{self.seed}/{'/'.join(parts)}".encode()).hexdigest()[:n]

    def ago(self, **kw: float) -> str:
        return _ts(self.now - timedelta(**kw))


def meta(ids: ObjectIds, kind: str, name: str, namespace: str | None, created: str, **extra: Any) -> Obj:
    """An object's metadata; `extra` entries that are empty are left out."""
    out: Obj = {"name": name}
    if namespace is not None:
        out["namespace"] = namespace
    out.update({"uid": ids.uid(kind, namespace or "", name), "creationTimestamp": created})
    out.update({k: v for k, v in extra.items() if v})
    return out
