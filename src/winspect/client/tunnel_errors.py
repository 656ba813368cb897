"""What went wrong with a tunnel (winspect.client.tunnel), in words, with what to do about it."""

from __future__ import annotations

import re

from winspect.kube.names import NAMESPACE

TUNNEL_ROLE = "winspect-tunnel"
NO_HOSTPROCESS_FORWARD = (
    "the node's container runtime cannot port-forward to a HostProcess pod (containerd 1.7 with "
    "the 2024 backport, or 2.0, can): use --connect direct from inside the network"
)


class TunnelFailure(Exception):
    """A tunnel that cannot be had: a short code (as NodeFailure's) and a one-line message; `hint`
    says what to do (said once for every node it concerns), `config` marks a refusal by the
    cluster's configuration (RBAC), which fails every node alike (exit 3)."""

    def __init__(self, code: str, message: str, *, hint: str = "", config: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.config = config


def grant_command(user: str) -> str:
    """The kubectl command that binds Role winspect-tunnel to `user` (a ServiceAccount's
    system:serviceaccount:NS:NAME as --serviceaccount)."""
    from winspect.client.security import binding_slug

    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        subject = f"--serviceaccount={parts[2]}:{parts[3]}"
    else:
        subject = f"--user={user}"
    return (
        f"kubectl create rolebinding {TUNNEL_ROLE}-{binding_slug(user)} -n {NAMESPACE} "
        f"--role={TUNNEL_ROLE} {subject}"
    )


def describe_refusal(
    status: int, message: str, user: str, *, port: int = 0, pod: str = "", kubelet: bool = False
) -> TunnelFailure:
    """A port-forward the API server refused (`status`, its Status message, or the body of the
    kubelet's answer it passed on) or the kubelet ended with an error (`kubelet`, the error
    channel's text)."""
    text = " ".join(message.split())
    lowered = text.lower()
    if status == 404 or (kubelet and _pod_unknown(lowered)):
        return _not_found(status, text, pod)
    if kubelet:
        if "connection refused" in lowered:
            where = f"port {port}" if port else "the server's port"
            return TunnelFailure(
                "TUNNEL_PORT_REFUSED",
                f"the tunnel reached the node, but nothing listens on {where} there (is winspectserv "
                f"running?): {text}",
            )
        if any(s in lowered for s in ("wincat", "not implemented", "hostprocess", "host process")):
            return TunnelFailure("TUNNEL_UNSUPPORTED", f"{NO_HOSTPROCESS_FORWARD} ({text})")
        return TunnelFailure("TUNNEL_FAILED", f"port-forward on the node failed: {text}")
    who = user or "(no user)"
    if status == 403:
        # The API server names the user as it authenticated them (the kubeconfig's user entry may be
        # named otherwise, e.g. clusterUser_rg_aks for alice@example.com).
        named = re.search(r'User "([^"]+)"', text)
        who = named.group(1) if named else who
        # The same words for every node (the API server's text names each node's pod).
        refused = re.search(r'cannot (\w+) resource "([^"]+)"', text)
        what = " ".join(refused.groups()) if refused else "find or port-forward to winspect's pods"
        return TunnelFailure(
            "PERMISSION_DENIED",
            f"forbidden by RBAC: user {who!r} may not {what} in namespace {NAMESPACE}, which tunnels "
            "through the API server need",
            hint=f"a cluster admin can allow it with: {grant_command(who)}",
            config=True,
        )
    if status == 401:
        return TunnelFailure(
            "UNAUTHENTICATED",
            f"the Kubernetes API server rejected the credentials of user {who!r} (401): refresh your "
            "kubeconfig credentials",
        )
    if status >= 500 and ("dial" in lowered or "backend" in lowered or "kubelet" in lowered):
        return TunnelFailure("TUNNEL_FAILED", f"the API server cannot reach the node's kubelet: {text}")
    if status:
        return TunnelFailure("TUNNEL_FAILED", f"the API server refused the port-forward ({status}: {text})")
    return TunnelFailure("TUNNEL_FAILED", f"no tunnel through the API server: {text}")


def _pod_unknown(lowered: str) -> bool:
    """The kubelet's words for a pod it does not run (other "not found"s, of an executable in the
    pod's sandbox, are the runtime's)."""
    return "pod does not exist" in lowered


def _not_found(status: int, text: str, pod: str) -> TunnelFailure:
    """A 404: the API server has no such pod object (its Status says `pods "NAME" not found`),
    or the node's kubelet, which the API server asked, does not run that pod."""
    named = f" {NAMESPACE}/{pod}" if pod else ""
    code = f"{status}: " if status else ""
    if status == 404 and re.search(r'\bpods? "[^"]*" not found', text):
        return TunnelFailure(
            "NO_SERVER_POD",
            f"the API server has no winspectserv pod{named} any more (deleted or replaced since it "
            f"was listed: run the command again) ({code}{text})",
        )
    return TunnelFailure(
        "POD_NOT_ON_NODE",
        f"the API server has the winspectserv pod{named}, but the node's kubelet does not run it "
        f"(the pod is starting, being replaced, or the node lost it; see `kubectl describe pod -n "
        f"{NAMESPACE} {pod or 'POD'}`) ({code}{text})",
    )
