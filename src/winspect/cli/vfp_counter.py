"""`winspect vfp-counter`: VFP port counters of one pod (and its node's host vNIC and external adapter)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from winspect.client.fanout import NodeResult

from winspect.cli.common import err, fan_out, handles_errors, print_results
from winspect.cli.interrupt import interruptible
from winspect.cli.names import complete_pods
from winspect.cli.options import command, settings_from

EXAMPLES = """
winspect vfp-counter web-0                        # pod in the context's namespace
winspect vfp-counter --pod web-0                  # the same
winspect vfp-counter -p shop/web-0 --detailed     # + host vNIC and external adapter ports
winspect vfp-counter -p web-0 -A                  # find the pod in any namespace
winspect vfp-counter deploy/web                   # the one pod of a Deployment (or svc/NAME)
winspect vfp-counter -l app=web -n shop           # the one pod with these labels
winspect vfp-counter -p web-0=10.224.0.71 --target win1=10.0.0.4   # without Kubernetes
"""


@command("vfp-counter", examples=EXAMPLES)
@click.argument("pod_arg", metavar="[POD]", required=False, shell_complete=complete_pods)
@click.option(
    "-p",
    "--pod",
    "pod",
    shell_complete=complete_pods,
    metavar="POD",
    help="The pod (or as the argument): NAME or NAMESPACE/NAME (with --target: NAME=IP).",
)
@click.option(
    "-d", "--detailed", is_flag=True, help="Also the node's host vNIC and external adapter VFP ports."
)
@click.option(
    "-l",
    "--selector",
    "selector",
    metavar="SELECTOR",
    help="The pod by its labels, as kubectl (one pod must match): -l app=web.",
)
@click.option("-A", "--all-namespaces", is_flag=True, help="Look for the pod in every namespace.")
@handles_errors
def vfp_counter(
    pod_arg: str | None, pod: str | None, detailed: bool, selector: str | None, all_namespaces: bool
) -> int:
    """VFP (Virtual Filtering Platform) port counters of a pod.

    The pod is looked up in Kubernetes; its node's winspectserv finds the
    pod's VFP port through its HNS endpoint and reads its counters, IN and
    OUT.
    """
    from winspect.client.filters import parse_pods
    from winspect.client.render.documents import vfp_to_dict
    from winspect.client.render.vfp import vfp_tables
    from winspect.client.targets import plan_pods
    from winspect.errors import UsageError
    from winspect.v1 import winspect_pb2 as pb

    settings = settings_from(click.get_current_context())
    if pod_arg is not None and pod is not None and pod_arg != pod:
        raise UsageError(f"two pods given, {pod_arg!r} and -p/--pod {pod!r}: vfp-counter takes one")
    pod = pod_arg if pod_arg is not None else pod
    if pod is not None and selector is not None:
        raise UsageError("give a pod or -l/--selector, not both")
    if pod is None and selector is None:
        raise UsageError("vfp-counter needs a pod, e.g. winspect vfp-counter web-0 (or -p web-0)")
    specs = parse_pods([pod], "-p/--pod", allow_ip=bool(settings.targets)) if pod is not None else []
    if pod is not None and len(specs) != 1:
        raise UsageError(f"-p/--pod takes one pod, got {len(specs)}: {pod!r}")
    plan = interruptible(lambda: plan_pods(settings, specs, all_namespaces, selector), err)
    if len(plan.pods) > 1:  # deploy/NAME, svc/NAME or -l with several pods
        names = ", ".join(f"{p.namespace}/{p.name}" for p in plan.pods)
        chooser = pod or f"-l {selector!r}"
        raise UsageError(f"{chooser} selects {len(plan.pods)} pods ({names}): vfp-counter takes one, name it")
    target_pod = plan.pods[0]
    pod_ref = pb.PodRef(namespace=target_pod.namespace, name=target_pod.name, ip=target_pod.ip)
    request = pb.VfpCountersRequest(pod=pod_ref, detailed=detailed)

    async def call(conn: Any) -> Any:
        return await conn.stub.GetVfpCounters(request, timeout=settings.timeout)

    results: list[NodeResult[Any]] = fan_out(settings, plan, call)
    if settings.targets and len(results) > 1 and any(r.error is None for r in results):
        # Without Kubernetes the pod's node is unknown: nodes that do not host it are no failure.
        results = [r for r in results if r.error is None or r.error.code != "NOT_FOUND"]
    pod_dict = {"namespace": target_pod.namespace, "name": target_pod.name, "ip": target_pod.ip}
    return print_results(
        settings,
        "vfp-counter",
        results,
        text=lambda _node, resp: (
            f"pod {target_pod.namespace}/{target_pod.name} ({target_pod.ip})\n" + vfp_tables(resp)
        ),
        to_json=lambda _node, resp: vfp_to_dict(resp, pod_dict),
        extra={"pod": pod_dict},
    )
