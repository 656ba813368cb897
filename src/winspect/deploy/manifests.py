"""The manifests `winspect install` applies, rendered for an image and a port.

The YAML files in data/ are the one source: deploy/base holds byte-identical
copies (`make manifests`; tests/deploy fails when they differ). Rendering
keeps the files' text, comments included, and replaces only the image and
the port (env value, containerPort, hostPort, both probes); the text is then
checked against the same change made on the parsed objects, so the printed
YAML and the applied objects cannot drift apart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from winspect.contract import DEFAULT_PORT
from winspect.errors import UsageError
from winspect.kube.names import (
    CONTAINER,
    DAEMONSET,
    DEFAULT_IMAGE,
    MANAGED_LABEL,
    NAMESPACE,
    PORT_ENV,
    PORT_NAME,
)

__all__ = [
    "CONTAINER",
    "DAEMONSET",
    "DEFAULT_IMAGE",
    "DEFAULT_PORT",
    "FILES",
    "MANAGED_LABEL",
    "NAMESPACE",
    "PORT_ENV",
    "PORT_NAME",
    "Manifests",
    "customize",
    "render",
    "validate_image",
    "validate_port",
]
# In apply order: the namespace first, the DaemonSet last. rbac.yaml holds several documents.
FILES = ("namespace.yaml", "serviceaccount.yaml", "rbac.yaml", "daemonset.yaml")

Obj = dict[str, Any]

# The reference grammar of container images (github.com/distribution/reference), without IPv6 hosts.
_HOST_PART = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"{_HOST_PART}(?:\.{_HOST_PART})*(?::\d+)?"
_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"
_IMAGE_RE = re.compile(rf"^(?:{_DOMAIN}/)?{_PATH}(?:/{_PATH})*(?::{_TAG})?(?:@{_DIGEST})?\Z")

_IMAGE_LINE_RE = re.compile(r"^(\s*image:\s*)\S+[ \t]*$", re.MULTILINE)
_PORT_LINE_RE = re.compile(r"^(\s*(?:containerPort|hostPort|port):\s*)(\d+)[ \t]*$", re.MULTILINE)
_PORT_ENV_RE = re.compile(rf'^(\s*-\s*name:\s*{PORT_ENV}\s*\n\s*value:\s*)"(\d+)"[ \t]*$', re.MULTILINE)


def file_text(name: str) -> str:
    """The text of one shipped manifest file (data/NAME)."""
    return resources.files("winspect.deploy").joinpath("data").joinpath(name).read_text(encoding="utf-8")


def validate_image(image: str) -> str:
    """The image reference, or UsageError when it is not one."""
    if len(image) > 255 or not _IMAGE_RE.match(image):
        raise UsageError(
            f"--image {image!r} is not a valid image reference: expected [REGISTRY[:PORT]/]REPOSITORY"
            "[:TAG][@sha256:DIGEST] with a lowercase repository, "
            "e.g. myregistry.azurecr.io/winspectserv:0.1.0"
        )
    return image


def validate_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise UsageError(f"--port {port} is out of range: expected 1-65535")
    return port


def container(daemonset: Obj) -> Obj:
    """The winspectserv container of a DaemonSet object."""
    for c in daemonset["spec"]["template"]["spec"]["containers"]:
        if c.get("name") == CONTAINER:
            result: Obj = c
            return result
    raise KeyError(f"DaemonSet {DAEMONSET} has no container {CONTAINER}")


def customize(objects: list[Obj], image: str, port: int) -> list[Obj]:
    """The objects with the image and every port place set (the objects are changed in place)."""
    for obj in objects:
        if obj.get("kind") != "DaemonSet":
            continue
        c = container(obj)
        c["image"] = image
        for env in c.get("env", []):
            if env.get("name") == PORT_ENV:
                env["value"] = str(port)
        for p in c.get("ports", []):
            if p.get("name") == PORT_NAME:
                p["containerPort"] = port
                if "hostPort" in p:
                    p["hostPort"] = port
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            for kind in ("grpc", "tcpSocket"):
                handler = c.get(probe, {}).get(kind)
                if handler is not None:
                    handler["port"] = port
    return objects


def _substitute(text: str, image: str, port: int) -> str:
    text = _IMAGE_LINE_RE.sub(lambda m: f"{m.group(1)}{image}", text)
    text = _PORT_ENV_RE.sub(lambda m: f'{m.group(1)}"{port}"', text)
    return _PORT_LINE_RE.sub(
        lambda m: f"{m.group(1)}{port}" if int(m.group(2)) == DEFAULT_PORT else m.group(0), text
    )


@dataclass(frozen=True)
class Manifests:
    """The rendered manifests: one YAML text per file and the parsed objects, in apply order."""

    image: str
    port: int
    texts: tuple[str, ...]
    objects: tuple[Obj, ...]

    def yaml(self) -> str:
        """All documents as one multi-document YAML stream."""
        return "---\n".join(t if t.endswith("\n") else t + "\n" for t in self.texts)

    def daemonset(self) -> Obj:
        return next(o for o in self.objects if o["kind"] == "DaemonSet")


def render(image: str = DEFAULT_IMAGE, port: int = DEFAULT_PORT) -> Manifests:
    """The manifests for `image` and `port` (UsageError for a bad image reference or port)."""
    import yaml

    validate_image(image)
    validate_port(port)
    texts: list[str] = []
    objects: list[Obj] = []
    for name in FILES:
        original = file_text(name)
        text = _substitute(original, image, port)
        wanted = customize([d for d in yaml.safe_load_all(original) if d], image, port)
        got = [d for d in yaml.safe_load_all(text) if d]
        if got != wanted:  # the file's layout changed so that the line edits miss a port or the image
            raise RuntimeError(
                f"internal error: rendering data/{name} for {image} port {port} is inconsistent"
            )
        texts.append(text)
        objects.extend(got)
    return Manifests(image, port, tuple(texts), tuple(objects))
