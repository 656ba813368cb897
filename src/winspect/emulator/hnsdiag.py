"""Emulated `hnsdiag` (Host Networking Service diagnostics) for one emulated node.

`hnsdiag list all|endpoints|loadbalancers|namespaces|networks [ids...] [-d[f][l]]`.
With -d each object is printed as pretty JSON with 4-space indents and
`"Key":value` (no space after the colon), objects one after another with no
array around them and no separator. Without -d a human summary table is
printed (its layout differs by Windows build; ours is COMPOSITE). `all`
prints each type under a heading line (`Networks:`, ...), with or without -d.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from winspect.emulator import store
from winspect.emulator.toolbase import ERROR_INVALID_PARAMETER, ERROR_NOT_SUPPORTED, begin, fail, pipe_closed

TYPES = ("networks", "endpoints", "namespaces", "loadbalancers")
HEADINGS = {
    "networks": "Networks:",
    "endpoints": "Endpoints:",
    "namespaces": "Namespaces:",
    "loadbalancers": "LoadBalancers:",
}
RULE = "/" * 72
USAGE = """hnsdiag (emulated): Host Networking Service diagnostics.

  hnsdiag list all|endpoints|loadbalancers|namespaces|networks [ids...] [-d[f][l]]

    -d   print each object's JSON (f: full, l: latest schema)"""
_DETAIL_RE = re.compile(r"^-d[fl]{0,2}\Z", re.IGNORECASE)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(args)
    except BrokenPipeError:
        return pipe_closed()


def _main(args: list[str]) -> int:
    began = begin("hnsdiag", args)
    if isinstance(began, int):
        return began
    state_dir = began
    if not args or args[0].lower() in ("help", "-h", "/?", "--help"):
        print(USAGE)
        return 0
    if args[0].lower() != "list":
        if args[0].lower() in ("delete", "reset", "stats", "get"):
            return fail(f"'hnsdiag {args[0]}' is not supported by the emulator.", ERROR_NOT_SUPPORTED)
        return fail(f"Invalid command '{args[0]}'.\n\n{USAGE}")
    if len(args) < 2:
        return fail(f"Missing object type for 'list'.\n\n{USAGE}")
    kind = args[1].lower()
    if kind not in (*TYPES, "all"):
        return fail(
            f"Invalid object type '{args[1]}': "
            f"use all, endpoints, loadbalancers, namespaces or networks.\n\n{USAGE}"
        )
    detailed = False
    ids: list[str] = []
    for a in args[2:]:
        if _DETAIL_RE.match(a):
            detailed = True
        elif a.startswith("-"):
            return fail(f"Invalid option '{a}'.\n\n{USAGE}", ERROR_INVALID_PARAMETER)
        else:
            ids.append(a)
    if ids and kind == "all":
        return fail("Object ids cannot be given with 'list all'.", ERROR_INVALID_PARAMETER)
    hns: dict[str, list[dict[str, Any]]] = store.read_json(state_dir, store.HNS_FILE)
    if kind == "all":
        blocks = []
        for t in TYPES:
            body = render_objects(hns[t]) if detailed else render_summary(t, hns[t])
            blocks.append(f"{RULE}\n{HEADINGS[t]}\n{body}")
        print("\n".join(blocks))
        return 0
    objects = hns[kind]
    if ids:
        wanted = [i.lower() for i in ids]
        found = [o for o in objects if o["ID"].lower() in wanted]
        missing = [i for i in ids if i.lower() not in {o["ID"].lower() for o in found}]
        if missing:
            return fail(f"HNS failed with error : Element not found. ({', '.join(missing)})", 1)
        objects = found
    print(render_objects(objects) if detailed else render_summary(kind, objects))
    return 0


def render_object(obj: dict[str, Any]) -> str:
    return json.dumps(obj, indent=4, separators=(",", ":"))


def render_objects(objects: list[dict[str, Any]]) -> str:
    """Objects back to back, no array and no separator (parse with a streaming decoder)."""
    return "\n".join(render_object(o) for o in objects)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("-" * len(lines[0]))
    for r in rows:
        lines.append(" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    return "\n".join(lines)


def render_summary(kind: str, objects: list[dict[str, Any]]) -> str:
    if kind == "networks":
        return _table(
            ["Name", "ID", "Type", "Management IP"],
            [[o["Name"], o["ID"], o["Type"], o.get("ManagementIP", "")] for o in objects],
        )
    if kind == "endpoints":
        return _table(
            ["ID", "Name", "Virtual Network Name", "IP Address", "Remote"],
            [
                [
                    o["ID"],
                    o.get("Name", ""),
                    o.get("VirtualNetworkName", ""),
                    o.get("IPAddress", ""),
                    "Yes" if o.get("IsRemoteEndpoint") else "No",
                ]
                for o in objects
            ],
        )
    if kind == "namespaces":
        return _table(
            ["ID", "Type", "Endpoint IDs"],
            [
                [
                    o["ID"],
                    o.get("Type", ""),
                    ", ".join(r["Data"]["ID"] for r in o.get("Resources", []) if r["Type"] == "Endpoint"),
                ]
                for o in objects
            ],
        )
    return _table(
        ["ID", "Virtual IPs", "Direct IP IDs"],
        [
            [o["ID"], ", ".join(o.get("FrontendVIPs", [])), ", ".join(o["HostComputeEndpoints"])]
            for o in objects
        ],
    )


if __name__ == "__main__":
    sys.exit(main())
