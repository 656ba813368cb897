"""How a command reaches its node servers: `--connect auto|direct|tunnel`.

- direct: gRPC to the node's address (its InternalIP, or --target's).
- tunnel: through the Kubernetes API server's port-forward to the winspectserv
  pod on the node (winspect.client.tunnel), for nodes on a private network.
- auto (the default): direct when the node accepts within AUTO_DIRECT_TIMEOUT,
  else the tunnel; decided per node.

--target names an address to dial, so its nodes are always dialled directly.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from winspect.client.tunnel_errors import TunnelFailure

if TYPE_CHECKING:
    from winspect.client.settings import Settings
    from winspect.client.tunnel import Tunnels


class Route:
    """The --connect mode of one command, and its tunnels (made on first need, closed by close())."""

    def __init__(
        self,
        mode: str,
        make_tunnels: Callable[[], Tunnels] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.mode = mode
        self._make_tunnels = make_tunnels
        self._log = log
        self._tunnels: Tunnels | None = None
        self._lock: asyncio.Lock | None = None

    async def tunnels(self) -> Tunnels:
        """This command's Tunnels; TunnelFailure when the cluster's access cannot be had."""
        if self._make_tunnels is None:
            raise TunnelFailure("TUNNEL_FAILED", "no Kubernetes cluster to tunnel through (--target)")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._tunnels is None:
                self._tunnels = await asyncio.to_thread(self._make)
            return self._tunnels

    def _make(self) -> Tunnels:
        from winspect.errors import WinspectError

        assert self._make_tunnels is not None
        try:
            return self._make_tunnels()
        except WinspectError as exc:
            raise TunnelFailure("KUBE_API", exc.message) from None
        except Exception as exc:  # credentials that cannot be used (exec plugin, certificate files)
            raise TunnelFailure("KUBE_API", f"cannot use the kubeconfig's credentials: {exc}") from None

    @property
    def can_tunnel(self) -> bool:
        """Nodes found through Kubernetes (not --target): a tunnel could reach them."""
        return self._make_tunnels is not None

    def said(self, node: str, path: str) -> None:
        """-v: which path a node's connection took."""
        if self._log is not None:
            self._log(f"{node}: {path}")

    async def close(self) -> None:
        tunnels, self._tunnels = self._tunnels, None
        if tunnels is not None:
            await tunnels.close_all()


DIRECT = Route("direct")


def route_for(settings: Settings) -> Route:
    """The route --connect asks for (--target: direct)."""
    log = _logger() if settings.verbose else None
    if settings.targets:
        return Route("direct", log=log)
    return Route(settings.connect, lambda: _tunnels(settings), log)


def _logger() -> Callable[[str], None]:
    from winspect.client.render.safe import printable

    def log(message: str) -> None:
        print(f"winspect: {printable(message)}", file=sys.stderr)

    return log


def _tunnels(settings: Settings) -> Tunnels:
    from winspect.client.tunnel import Tunnels
    from winspect.kube.cluster import Cluster
    from winspect.kube.kubeconfig import resolve_config
    from winspect.kube.portforward import api_access

    resolved = resolve_config(settings.kubeconfig, settings.context, settings.namespace)
    return Tunnels(Cluster(resolved, settings.timeout), api_access(resolved), settings.connect_timeout)
