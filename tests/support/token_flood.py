"""A flood of calls with random bearer tokens, as a separate process (its threads do not share the
server's interpreter): `python -m support.token_flood ADDRESS CA_FILE SERVER_NAME THREADS SECONDS`.

Every call carries a new random token, so no cache of the server can answer it. Prints one JSON
object at the end: the number of calls and the count of each status code received.
"""

from __future__ import annotations

import json
import secrets
import sys
import threading
import time
from collections import Counter

import grpc

from winspect.v1 import winspect_pb2 as pb

METHOD = "/winspect.v1.NodeInspector/GetHns"


def flood(address: str, ca_pem: bytes, server_name: str, threads: int, seconds: float) -> Counter[str]:
    codes: Counter[str] = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    request = pb.HnsRequest(type=pb.HNS_OBJECT_TYPE_NETWORKS).SerializeToString()

    def attacker() -> None:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca_pem)
        options = [("grpc.ssl_target_name_override", server_name), ("grpc.use_local_subchannel_pool", 1)]
        with grpc.secure_channel(address, credentials, options=options) as channel:
            call = channel.unary_unary(METHOD)
            while time.monotonic() < deadline:
                token = secrets.token_urlsafe(32)
                try:
                    call(request, timeout=10, metadata=(("authorization", f"Bearer {token}"),))
                    code = "OK"
                except grpc.RpcError as exc:
                    code = exc.code().name  # type: ignore[attr-defined]
                with lock:
                    codes[code] += 1

    workers = [threading.Thread(target=attacker, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return codes


def main(argv: list[str]) -> int:
    address, ca_file, server_name, threads, seconds = argv
    with open(ca_file, "rb") as f:
        ca_pem = f.read()
    codes = flood(address, ca_pem, server_name, int(threads), float(seconds))
    print(json.dumps({"calls": sum(codes.values()), "codes": dict(codes)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
