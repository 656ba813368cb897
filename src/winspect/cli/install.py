"""`winspect install` and `winspect uninstall`: winspectserv as a HostProcess DaemonSet."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from winspect.cli.common import echo_document, err, handles_errors
from winspect.cli.options import command, namespace_given, settings_from
from winspect.client.render.words import plural

if TYPE_CHECKING:
    from winspect.client.settings import Settings
    from winspect.deploy.install import ObjectResult
    from winspect.deploy.readiness import Rollout
    from winspect.kube.cluster import Cluster

DEFAULT_WAIT = "5m"

INSTALL_EXAMPLES = """
winspect install --dry-run > winspect.yaml        # the manifests, to read or apply by hand
winspect install --image myregistry.azurecr.io/winspectserv:0.1.0
winspect install --image myregistry.azurecr.io/winspectserv:0.1.0 --port 43058 --wait-timeout 10m
winspect --context prod install --wait-timeout 0  # apply and return without waiting
"""

ROTATE_EXAMPLES = """
winspect rotate-certs                      # new CA and certificate, then wait for the restart
winspect --context prod rotate-certs --wait-timeout 0
"""

UNINSTALL_EXAMPLES = """
winspect uninstall
winspect --context prod uninstall -o json
"""


def _check_scope(ctx: click.Context, settings: Settings, what: str) -> None:
    from winspect.deploy.manifests import NAMESPACE
    from winspect.errors import UsageError

    if namespace_given(ctx):
        raise UsageError(
            f"-n/--namespace does not apply to {what}: winspect is always installed in namespace {NAMESPACE}"
        )
    if settings.targets:
        raise UsageError(f"--target talks to nodes directly; {what} works through the Kubernetes API")


def _cluster(settings: Settings) -> Cluster:
    from winspect.kube.cluster import Cluster
    from winspect.kube.kubeconfig import resolve_config

    resolved = resolve_config(settings.kubeconfig, settings.context, None)
    if settings.verbose:
        context = resolved.config.context_name
        err(f"kubeconfig {resolved.source}, context {context!r}, API server {resolved.server}")
    return Cluster(resolved, settings.timeout)


def _print_rollout(command: str, state: Rollout, extra: dict[str, Any], settings: Settings) -> None:
    """The rollout's per-node state: one JSON document, or the table (none without nodes)."""
    from winspect.client.render.documents import document

    if settings.output == "json":
        ok = {n.node: n.to_dict() for n in state.nodes if n.ready}
        bad = {n.node: {"code": n.status, "message": n.detail} for n in state.not_ready()}
        echo_document(settings, document(command, ok, bad, **extra, waited=True, ready=state.ready))
    elif state.nodes:
        click.echo(_rollout_table(state))


def _rollout_table(state: Rollout) -> str:
    from winspect.client.render.table import format_table

    rows = [(n.node, n.ready, n.pod, n.status, "" if n.ready else n.detail) for n in state.nodes]
    return format_table(("NODE", "READY", "POD", "STATUS", "DETAIL"), rows)


def _results_lines(results: list[ObjectResult]) -> str:
    return "\n".join(f"{r.ref} {r.action}" + (f" ({r.note})" if r.note else "") for r in results)


@command("install", examples=INSTALL_EXAMPLES)
@click.option(
    "--image",
    metavar="IMAGE",
    help="winspectserv image, built with deploy/Dockerfile.  [default: ghcr.io/winspect/winspectserv:"
    "VERSION]",
)
@click.option(
    "--dry-run", is_flag=True, help="Print the manifests (YAML, or a JSON List with -o json); apply nothing."
)
@click.option(
    "--wait-timeout",
    metavar="SECONDS",
    default=DEFAULT_WAIT,
    show_default=True,
    help="How long to wait for winspectserv to be ready on every Windows node (e.g. 90, 10m); 0: no wait.",
)
@handles_errors
def install(image: str | None, dry_run: bool, wait_timeout: str) -> int:
    """Install winspectserv on every Windows node: a HostProcess DaemonSet in namespace winspect-system.

    Applies the namespace, the ServiceAccounts, the RBAC objects (ClusterRoles
    winspect-viewer and winspect-capture, the server's review rights) and the
    DaemonSet with server-side apply (field manager "winspect"; running it again
    updates them), makes winspect's CA and the servers' TLS certificate (Secret
    winspect-tls, ConfigMap winspect-ca; kept on later runs while valid), then
    waits until a ready pod runs on every Windows node, showing progress on
    stderr. The global --port sets the port winspectserv listens on (default
    50051); the client then finds it in the DaemonSet. Exit code 1 when some
    node is not ready in time: the table shows each node's pod and why. Users
    need a binding to winspect-viewer or winspect-capture (docs/security.md):
    kubectl create clusterrolebinding winspect-viewer-alice --clusterrole=winspect-viewer --user=alice
    """
    from winspect.client.filters import parse_seconds
    from winspect.client.render.documents import document
    from winspect.deploy.install import Deployer
    from winspect.deploy.manifests import DEFAULT_IMAGE, NAMESPACE, render
    from winspect.errors import EXIT_NODE_FAILED

    ctx = click.get_current_context()
    settings = settings_from(ctx)
    _check_scope(ctx, settings, "install")
    wait = parse_seconds(wait_timeout, "--wait-timeout")
    manifests = render(image or DEFAULT_IMAGE, settings.port)
    as_json = settings.output == "json"
    if dry_run:
        if as_json:
            echo_document(settings, {"apiVersion": "v1", "kind": "List", "items": list(manifests.objects)})
        else:
            click.echo(manifests.yaml(), nl=False)
        return 0

    cluster = _cluster(settings)
    try:
        deployer = Deployer(cluster, lambda line: err(line))
        version = deployer.check_version()
        if settings.verbose:
            err(f"Kubernetes {version}")
        applied = deployer.apply(manifests)
        if not as_json:
            click.echo(_results_lines(applied))
        extra: dict[str, Any] = {
            "namespace": NAMESPACE,
            "image": manifests.image,
            "port": manifests.port,
            "applied": [r.to_dict() for r in applied],
        }
        if wait == 0:
            if as_json:
                echo_document(settings, document("install", {}, {}, **extra, waited=False, ready=None))
            err("not waiting for the rollout (--wait-timeout 0)")
            return 0
        err(f"waiting up to {wait:g}s for winspectserv on every Windows node (--wait-timeout)")
        state = deployer.wait(wait)
    finally:
        cluster.close()

    _print_rollout("install", state, extra, settings)
    if state.total == 0:
        err(
            "the cluster has no Windows nodes (label kubernetes.io/os=windows): winspectserv will start on "
            "each Windows node that joins"
        )
        return 0
    if state.ready:
        err(f"winspectserv is ready on {_all_nodes(state.total)} (port {manifests.port})")
        return 0
    names = ", ".join(n.node for n in state.not_ready())
    err(
        f"error: winspectserv is not ready on {len(state.not_ready())} of {_nodes(state.total)} after "
        f"{wait:g}s (--wait-timeout): {names}; see `kubectl -n {NAMESPACE} get pods -o wide` and "
        f"`kubectl -n {NAMESPACE} describe pods`"
    )
    return EXIT_NODE_FAILED


@command("uninstall", examples=UNINSTALL_EXAMPLES)
@handles_errors
def uninstall() -> int:
    """Remove winspectserv: the DaemonSet, its certificates, ServiceAccounts, RBAC and the namespace.

    The namespace is deleted only when it carries the label
    app.kubernetes.io/name=winspect (as install makes it). The ClusterRoles
    winspect-viewer and winspect-capture go too; bindings to them that an
    admin created stay. Running it again is harmless: objects already gone
    are reported as absent.
    """
    from winspect.client.render.documents import document
    from winspect.deploy.install import Deployer
    from winspect.deploy.manifests import DEFAULT_IMAGE, render

    ctx = click.get_current_context()
    settings = settings_from(ctx)
    _check_scope(ctx, settings, "uninstall")
    cluster = _cluster(settings)
    try:
        results = Deployer(cluster, lambda line: err(line)).uninstall(render(DEFAULT_IMAGE, settings.port))
    finally:
        cluster.close()
    if settings.output == "json":
        echo_document(settings, document("uninstall", {}, {}, objects=[r.to_dict() for r in results]))
    else:
        click.echo(_results_lines(results))
    return 0


@command("rotate-certs", examples=ROTATE_EXAMPLES)
@click.option(
    "--wait-timeout",
    metavar="SECONDS",
    default=DEFAULT_WAIT,
    show_default=True,
    help="How long to wait for winspectserv to restart on every Windows node (e.g. 90, 10m); 0: no wait.",
)
@handles_errors
def rotate_certs(wait_timeout: str) -> int:
    """Replace winspect's CA and server certificate, and restart winspectserv to serve them.

    Makes a new CA and certificate (the old CA key was never kept), replaces
    the Secret winspect-tls and the ConfigMap winspect-ca, and restarts the
    DaemonSet's pods; clients trust the new CA from their next command on.
    A capture running on a node ends when its pod restarts. Also the way to
    create the certificates once when winspect was deployed from deploy/base
    (kustomize) rather than with `winspect install`.
    """
    from winspect.client.filters import parse_seconds
    from winspect.client.render.documents import document
    from winspect.deploy.install import Deployer
    from winspect.deploy.manifests import NAMESPACE
    from winspect.errors import EXIT_NODE_FAILED

    ctx = click.get_current_context()
    settings = settings_from(ctx)
    _check_scope(ctx, settings, "rotate-certs")
    wait = parse_seconds(wait_timeout, "--wait-timeout")
    as_json = settings.output == "json"
    cluster = _cluster(settings)
    try:
        deployer = Deployer(cluster, lambda line: err(line))
        results = deployer.ensure_certificates(rotate=True)
        if not as_json:
            click.echo(_results_lines(results))
        restarted = any(r.action == "restarted" for r in results)
        extra: dict[str, Any] = {"namespace": NAMESPACE, "applied": [r.to_dict() for r in results]}
        if not restarted or wait == 0:
            if as_json:
                echo_document(settings, document("rotate-certs", {}, {}, **extra, waited=False, ready=None))
            if not restarted:
                err("the DaemonSet winspectserv is not installed: its pods will serve the new certificate")
            else:
                err("not waiting for the restart (--wait-timeout 0)")
            return 0
        err(f"waiting up to {wait:g}s for winspectserv to restart on every Windows node (--wait-timeout)")
        state = deployer.wait(wait)
    finally:
        cluster.close()
    _print_rollout("rotate-certs", state, extra, settings)
    if state.ready:
        err(f"winspectserv serves the new certificate on {_all_nodes(state.total)}")
        return 0
    names = ", ".join(n.node for n in state.not_ready())
    err(
        f"error: winspectserv has not restarted on {len(state.not_ready())} of {_nodes(state.total)} "
        f"after {wait:g}s (--wait-timeout): {names}; until it has, clients refuse those nodes' old "
        f"certificate; see `kubectl -n {NAMESPACE} get pods -o wide`"
    )
    return EXIT_NODE_FAILED


def _nodes(total: int) -> str:
    return plural(total, "Windows node")


def _all_nodes(total: int) -> str:
    """`all 3 Windows nodes`, `the 1 Windows node`."""
    return f"{'the' if total == 1 else 'all'} {_nodes(total)}"
