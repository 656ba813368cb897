"""Replay node servers (benchmarks only): answer GetHns and GetCounters at once with
responses recorded from a sandbox's nodes, to measure the client's fan-out cost alone.

    python bench/replay_nodes.py record STATE.json OUT_DIR   # from a running sandbox
    python bench/replay_nodes.py serve OUT_DIR N [CERT KEY]  # N servers on 127.0.0.1

`record` builds each node's real responses with the server's own code (the
Windows backend over that node's emulated tools): GetHns(ALL) as winspectserv
would answer it, and GetCounters with no capture running. `serve` starts one
gRPC server per node on 127.0.0.1 (its own port), each answering with that
node's pre-serialised bytes (no work per request), prints one JSON line
{"targets": ["name=127.0.0.1:port", ...]} and serves until stdin closes.
With CERT and KEY (a sandbox's winspectserv certificate) it serves TLS as
winspectserv does, so the client does its TLS handshakes and sends its
bearer token; the replay checks no token (that is the server's cost).
"""

from __future__ import annotations

import json
import sys
from concurrent import futures
from pathlib import Path

import grpc

SERVICE = "winspect.v1.NodeInspector"


def record(state_file: Path, out_dir: Path) -> int:
    from winspect.node.windows.backend import WindowsBackend
    from winspect.server import validation
    from winspect.v1 import winspect_pb2 as pb

    state = json.loads(state_file.read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    kinds = validation.hns(pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_ALL))
    names = []
    for node in state["nodes"]:
        backend = WindowsBackend(tools_dir=node["tools_dir"])
        # As winspectserv answers the CLI's tables: objects only (HnsRequest.objects_only).
        hns = pb.HnsResponse(sections=[backend.hns(kind, summary=False) for kind in kinds])
        (out_dir / f"{node['name']}.GetHns.bin").write_bytes(hns.SerializeToString())
        counters = pb.CountersResponse(capture_running=False)
        (out_dir / f"{node['name']}.GetCounters.bin").write_bytes(counters.SerializeToString())
        names.append(node["name"])
    (out_dir / "nodes.json").write_text(json.dumps(names))
    return 0


def _handler(responses: dict[str, bytes]) -> grpc.GenericRpcHandler[bytes, bytes]:
    def answer(data: bytes) -> grpc.RpcMethodHandler[bytes, bytes]:
        # No (de)serialisers: the request arrives as bytes and the bytes go out as they are.
        return grpc.unary_unary_rpc_method_handler(lambda _request, _context: data)

    return grpc.method_handlers_generic_handler(SERVICE, {m: answer(b) for m, b in responses.items()})


def serve(out_dir: Path, count: int, tls: tuple[Path, Path] | None = None) -> int:
    names: list[str] = json.loads((out_dir / "nodes.json").read_text())[:count]
    credentials = None
    if tls is not None:
        credentials = grpc.ssl_server_credentials([(tls[1].read_bytes(), tls[0].read_bytes())])
    servers = []
    targets = []
    for name in names:
        responses = {
            method: (out_dir / f"{name}.{method}.bin").read_bytes() for method in ("GetHns", "GetCounters")
        }
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        server.add_generic_rpc_handlers((_handler(responses),))
        if credentials is not None:
            port = server.add_secure_port("127.0.0.1:0", credentials)
        else:
            port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        targets.append(f"{name}=127.0.0.1:{port}")
    print(json.dumps({"targets": targets}), flush=True)
    sys.stdin.read()
    for server in servers:
        server.stop(None)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 3 and argv[0] == "record":
        return record(Path(argv[1]), Path(argv[2]))
    if len(argv) in (3, 5) and argv[0] == "serve":
        tls = (Path(argv[3]), Path(argv[4])) if len(argv) == 5 else None
        return serve(Path(argv[1]), int(argv[2]), tls)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
