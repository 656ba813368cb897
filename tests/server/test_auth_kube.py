"""winspectserv's reviews through the Kubernetes API (winspect.server.auth_kube), made with the standard
library: against the sandbox's API server, and against a small TLS loopback server of this file that
records what it is sent and answers what a test asks (errors, delays, dropped connections, client
certificates). Every kubeconfig source the server supports, and each refusal, is exercised here."""

from __future__ import annotations

import base64
import datetime
import json
import re
import ssl
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from winspect.incluster import SERVICE_ACCOUNT_DIR
from winspect.sandbox.kubeapi.auth import VIEWER_USER
from winspect.sandbox.kubeapi.tls import make_tls
from winspect.sandbox.security import LocalApi, start_local_api
from winspect.server import auth_kube_config
from winspect.server.auth import CREATE_CAPTURE, GET_HNS, Caller, ReviewUnavailable, TokenResult
from winspect.server.auth_kube import KubeReviewer
from winspect.server.auth_kube_credentials import AuthSetupError

SERVER_TOKEN = "server-token"
ALICE = Caller("alice", "u-1", ("devs", "system:authenticated"), (("scopes", ("a", "b")),))

# ---------------------------------------------------------------- a recording API server


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any
    peer: str  # the client certificate's CN, if one was sent


Answer = tuple[int, bytes]


def review_answer(seen: Seen) -> Answer:
    """What the API server answers a review: alice-token is alice; alice may get, not create."""
    spec = seen.body["spec"]
    if seen.body["kind"] == "TokenReview":
        if spec["token"] == "alice-token":
            user = {
                "username": "alice",
                "uid": "u-1",
                "groups": list(ALICE.groups),
                "extra": {"scopes": ["a", "b"]},
            }
            status: dict[str, Any] = {"authenticated": True, "user": user}
        else:
            status = {"user": {}, "error": "token is expired"}
    else:
        status = {"allowed": spec["resourceAttributes"]["verb"] == "get"}
    return 201, json.dumps({**seen.body, "status": status}).encode()


def status_answer(code: int, message: str) -> Answer:
    doc = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}
    return code, json.dumps(doc).encode()


@dataclass
class FakeApi:
    tls_dir: Path
    names: tuple[list[str], list[str]] = (["127.0.0.1"], ["localhost"])
    client_ca_pem: bytes | None = None
    plain: bool = False
    tokens: tuple[str, ...] = (SERVER_TOKEN,)  # the server credentials it accepts (None: any)
    answer: Callable[[Seen], Answer] = review_answer
    delay: float = 0.0
    drop_after_response: bool = False  # close kept-alive connections without saying so
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    ca_pem: bytes = b""

    def start(self) -> FakeApi:
        tls = make_tls(*self.names)
        self.ca_pem = tls.ca_pem
        _, crt, key = tls.write(self.tls_dir)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(crt), str(key))
        if self.client_ca_pem is not None:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=self.client_ca_pem.decode())
        fake = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, request: Any, client_address: Any) -> None:
                fake.connections += 1
                if not fake.plain:
                    try:
                        request = context.wrap_socket(request, server_side=True)
                    except (ssl.SSLError, OSError):
                        return
                super().finish_request(request, client_address)

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.fake = self  # type: ignore[attr-defined]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"{'http' if self.plain else 'https'}://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def kubeconfig(
        self,
        path: Path,
        user: dict[str, Any] | None = None,
        cluster: dict[str, Any] | None = None,
        server: str | None = None,
    ) -> str:
        cluster_body = {
            "server": server or self.url,
            "certificate-authority-data": base64.b64encode(self.ca_pem).decode(),
        }
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": {**cluster_body, **(cluster or {})}}],
            "users": [
                {"name": "winspectserv", "user": user if user is not None else {"token": SERVER_TOKEN}}
            ],
            "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "winspectserv"}}],
            "current-context": "ctx",
        }
        path.write_text(yaml.safe_dump(doc))
        return str(path)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        fake: FakeApi = self.server.fake  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        peer = ""
        cert = self.connection.getpeercert() if isinstance(self.connection, ssl.SSLSocket) else None
        if cert:
            peer = next(str(pair[1]) for rdn in cert["subject"] for pair in rdn if pair[0] == "commonName")
        seen = Seen(self.path, dict(self.headers.items()), json.loads(body), peer)
        fake.seen.append(seen)
        if fake.delay:
            time.sleep(fake.delay)
        auth = self.headers.get("Authorization", "")
        if fake.tokens and auth not in {f"Bearer {t}" for t in fake.tokens}:
            code, payload = status_answer(401, "Unauthorized")
        else:
            code, payload = fake.answer(seen)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        if fake.drop_after_response:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeApi]:
    api = FakeApi(tmp_path / "api").start()
    try:
        yield api
    finally:
        api.stop()


def reviewer(config: str | None, timeout: float = 5.0) -> KubeReviewer:
    return KubeReviewer.from_kubeconfig(config, timeout)


# ---------------------------------------------------------------- against the sandbox's API server


@pytest.fixture
def sandbox_api(tmp_path: Path) -> Iterator[LocalApi]:
    api = start_local_api(tmp_path / "kube")
    try:
        yield api
    finally:
        api.stop()


def test_reviews_through_the_sandbox_api(sandbox_api: LocalApi) -> None:
    r = reviewer(str(sandbox_api.security.kubeconfig))
    try:
        result = r.token_review(sandbox_api.token(VIEWER_USER))
        assert result.caller is not None and result.caller.username == VIEWER_USER
        assert "system:authenticated" in result.caller.groups
        assert r.access_review(result.caller, GET_HNS, "node-1") is True
        assert r.access_review(result.caller, CREATE_CAPTURE, "node-1") is False
        assert r.token_review("not-a-token").caller is None
        assert r.server == sandbox_api.url
    finally:
        r.close()


def test_concurrent_reviews_from_many_threads(sandbox_api: LocalApi) -> None:
    r = reviewer(str(sandbox_api.security.kubeconfig))
    token = sandbox_api.token(VIEWER_USER)
    results: list[bool] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(8):
                caller = r.token_review(token).caller
                results.append(caller is not None and r.access_review(caller, GET_HNS, "n"))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    r.close()
    assert errors == [] and results == [True] * 96


def test_the_review_path_imports_no_kubernetes_client_library(sandbox_api: LocalApi, tmp_path: Path) -> None:
    sec = sandbox_api.security
    script = textwrap.dedent(
        f"""
        import sys
        import winspect.server.main
        from winspect.server.auth_kube import KubeReviewer
        from winspect.server.tls import load_server_tls
        load_server_tls({str(sec.cert_file)!r}, {str(sec.key_file)!r})
        r = KubeReviewer.from_kubeconfig({str(sec.kubeconfig)!r})
        assert r.token_review({sandbox_api.token(VIEWER_USER)!r}).caller is not None
        heavy = ("lightkube", "httpx", "httpx2", "msgspec", "cryptography", "h11", "h2", "anyio", "certifi")
        print(sorted(m for m in sys.modules if m.split(".")[0] in heavy))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ---------------------------------------------------------------- requests and answers


def test_requests_are_the_json_the_api_expects(fake: FakeApi, tmp_path: Path) -> None:
    r = reviewer(fake.kubeconfig(tmp_path / "kc", server=fake.url + "/prefix/"))
    assert r.token_review("alice-token") == TokenResult(ALICE)
    assert r.access_review(ALICE, GET_HNS, "node-7") is True
    assert r.access_review(Caller("bob"), CREATE_CAPTURE, "node-7") is False
    tr, sar, bare = fake.seen
    assert tr.path == "/prefix/apis/authentication.k8s.io/v1/tokenreviews"
    assert tr.body == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenReview",
        "spec": {"token": "alice-token"},
    }
    assert tr.headers["Authorization"] == f"Bearer {SERVER_TOKEN}"
    assert tr.headers["Content-Type"] == "application/json"
    assert sar.path == "/prefix/apis/authorization.k8s.io/v1/subjectaccessreviews"
    attributes = {"group": "winspect.io", "resource": "nodes", "name": "node-7"}
    assert sar.body == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "alice",
            "uid": "u-1",
            "groups": ["devs", "system:authenticated"],
            "extra": {"scopes": ["a", "b"]},
            "resourceAttributes": {**attributes, "subresource": "hns", "verb": "get"},
        },
    }
    # Empty uid, groups and extra are left out, as the API's omitempty does.
    assert bare.body["spec"] == {
        "user": "bob",
        "resourceAttributes": {**attributes, "subresource": "capture", "verb": "create"},
    }


def test_refused_token_gives_the_api_servers_reason(fake: FakeApi, tmp_path: Path) -> None:
    assert reviewer(fake.kubeconfig(tmp_path / "kc")).token_review("old") == TokenResult(
        None, "token is expired"
    )


def test_one_kept_alive_connection_serves_sequential_reviews(fake: FakeApi, tmp_path: Path) -> None:
    r = reviewer(fake.kubeconfig(tmp_path / "kc"))
    for _ in range(5):
        assert r.token_review("alice-token").caller == ALICE
    assert fake.connections == 1
    r.close()


def test_a_connection_the_server_closed_is_replaced(fake: FakeApi, tmp_path: Path) -> None:
    fake.drop_after_response = True
    r = reviewer(fake.kubeconfig(tmp_path / "kc"))
    for _ in range(3):
        assert r.token_review("alice-token").caller == ALICE
    assert len(fake.seen) == 3 and fake.connections == 3


def _unavailable(call: Callable[[], object]) -> str:
    with pytest.raises(ReviewUnavailable) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (
            status_answer(401, "Unauthorized"),
            "the API server rejected winspectserv's own credentials (401 Unauthorized)",
        ),
        (
            status_answer(403, 'tokenreviews.authentication.k8s.io is forbidden: User "x" cannot create'),
            "winspectserv's own identity may not create tokenreviews (403: tokenreviews.authentication.k8s.io"
            ' is forbidden: User "x" cannot create); the ClusterRoleBinding winspect-server-auth-delegator '
            "that `winspect install` creates grants it",
        ),
        (
            status_answer(500, "etcd   is\n down"),
            "the API server answered tokenreviews with 500: etcd is down",
        ),
        (
            (502, b"<html>Bad Gateway</html>"),
            "the API server answered tokenreviews with 502: <html>Bad Gateway</html>",
        ),
        ((201, b"not json"), "the API server answered tokenreviews with 201 and no TokenReview"),
    ],
)
def test_api_errors_are_review_unavailable(
    fake: FakeApi, tmp_path: Path, answer: Answer, message: str
) -> None:
    fake.answer = lambda seen: answer
    assert _unavailable(lambda: reviewer(fake.kubeconfig(tmp_path / "kc")).token_review("t")) == message


def test_slow_api_server_times_out(fake: FakeApi, tmp_path: Path) -> None:
    fake.delay = 15.0
    started = time.monotonic()
    message = _unavailable(lambda: reviewer(fake.kubeconfig(tmp_path / "kc"), timeout=0.3).token_review("t"))
    assert message == "the API server did not answer within 0.3s"
    assert time.monotonic() - started < 5  # gave up at its timeout, long before the answer


def test_unreachable_api_server(fake: FakeApi, tmp_path: Path) -> None:
    config = fake.kubeconfig(tmp_path / "kc")
    fake.stop()
    assert _unavailable(lambda: reviewer(config).token_review("t")).startswith(
        "the API server is unreachable ("
    )


def test_untrusted_api_server_is_refused(fake: FakeApi, tmp_path: Path) -> None:
    other_ca = base64.b64encode(make_tls(["127.0.0.1"], []).ca_pem).decode()
    config = fake.kubeconfig(tmp_path / "kc", cluster={"certificate-authority-data": other_ca})
    message = _unavailable(lambda: reviewer(config).token_review("t"))
    assert message.startswith("the API server is unreachable (") and "CERTIFICATE_VERIFY_FAILED" in message
    # Without any CA the system's roots are used, and they do not know this one either.
    bare = fake.kubeconfig(tmp_path / "kc2", cluster={"certificate-authority-data": None})
    assert "CERTIFICATE_VERIFY_FAILED" in _unavailable(lambda: reviewer(bare).token_review("t"))


# ---------------------------------------------------------------- kubeconfig sources


def test_certificate_authority_file_relative_to_the_kubeconfig(fake: FakeApi, tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "ca.pem").write_bytes(fake.ca_pem)
    config = fake.kubeconfig(
        tmp_path / "conf" / "kc",
        cluster={"certificate-authority-data": None, "certificate-authority": "ca.pem"},
    )
    assert reviewer(config).token_review("alice-token").caller == ALICE


def test_insecure_skip_tls_verify(fake: FakeApi, tmp_path: Path) -> None:
    config = fake.kubeconfig(
        tmp_path / "kc", cluster={"certificate-authority-data": None, "insecure-skip-tls-verify": True}
    )
    assert reviewer(config).token_review("alice-token").caller == ALICE


def test_tls_server_name(tmp_path: Path) -> None:
    api = FakeApi(tmp_path / "api", names=([], ["api.example"])).start()
    try:
        named = api.kubeconfig(tmp_path / "kc", cluster={"tls-server-name": "api.example"})
        assert reviewer(named).token_review("alice-token").caller == ALICE
        unnamed = api.kubeconfig(tmp_path / "kc2")
        assert "CERTIFICATE_VERIFY_FAILED" in _unavailable(lambda: reviewer(unnamed).token_review("t"))
    finally:
        api.stop()


def test_plain_http_server(tmp_path: Path) -> None:
    api = FakeApi(tmp_path / "api", plain=True).start()
    try:
        assert reviewer(api.kubeconfig(tmp_path / "kc")).token_review("alice-token").caller == ALICE
    finally:
        api.stop()


def test_token_file_is_read_for_every_request(fake: FakeApi, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    fake.tokens = ("first", "second")
    r = reviewer(fake.kubeconfig(tmp_path / "kc", user={"tokenFile": "token"}))  # relative to the kubeconfig
    r.token_review("alice-token")
    token.write_text("second")
    r.token_review("alice-token")
    assert [s.headers["Authorization"] for s in fake.seen] == ["Bearer first", "Bearer second"]
    token.unlink()
    assert _unavailable(lambda: r.token_review("alice-token")).startswith(
        f"winspectserv's own credentials are unusable (cannot read the token file {token}: "
    )


def test_missing_token_file_stops_the_start(fake: FakeApi, tmp_path: Path) -> None:
    with pytest.raises(AuthSetupError, match="cannot read the token file"):
        reviewer(fake.kubeconfig(tmp_path / "kc", user={"tokenFile": str(tmp_path / "none")}))


def _service_account(root: Path, ca_pem: bytes, token: str) -> Path:
    sa = root / SERVICE_ACCOUNT_DIR.lstrip("/")
    sa.mkdir(parents=True)
    (sa / "token").write_text(token)
    (sa / "ca.crt").write_bytes(ca_pem)
    (sa / "namespace").write_text("winspect-system")
    return sa


def test_in_cluster_service_account_under_the_sandbox_mount_point(
    fake: FakeApi, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # HostProcess containers of containerd before 1.7 mount it under %CONTAINER_SANDBOX_MOUNT_POINT%.
    assert not Path(SERVICE_ACCOUNT_DIR, "token").exists()
    sa = _service_account(tmp_path / "mount", fake.ca_pem, "sa-token-1")
    monkeypatch.setenv(auth_kube_config.SANDBOX_MOUNT_ENV, str(tmp_path / "mount"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(fake.httpd.server_address[1]))
    fake.tokens = ("sa-token-1", "sa-token-2")
    r = reviewer(None)
    assert r.server == fake.url
    assert r.token_review("alice-token").caller == ALICE
    (sa / "token").write_text("sa-token-2")  # the kubelet rotated it
    assert r.token_review("alice-token").caller == ALICE
    assert [s.headers["Authorization"] for s in fake.seen] == ["Bearer sa-token-1", "Bearer sa-token-2"]


def test_in_cluster_ipv6_service_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _service_account(tmp_path / "mount", make_tls(["127.0.0.1"], []).ca_pem, "t")
    monkeypatch.setenv(auth_kube_config.SANDBOX_MOUNT_ENV, str(tmp_path / "mount"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "fd00::1")
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    assert reviewer(None).server == "https://[fd00::1]:443"


def test_in_cluster_without_ca_or_token_stops_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sa = _service_account(tmp_path / "mount", b"", "")
    monkeypatch.setenv(auth_kube_config.SANDBOX_MOUNT_ENV, str(tmp_path / "mount"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    with pytest.raises(AuthSetupError, match=r"^the service account's ca\.crt is unusable: "):
        reviewer(None)
    (sa / "ca.crt").write_bytes(make_tls(["127.0.0.1"], []).ca_pem)
    with pytest.raises(AuthSetupError, match=re.escape(f"the token file {sa / 'token'} is empty")):
        reviewer(None)


def test_no_credentials_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv(auth_kube_config.SANDBOX_MOUNT_ENV, raising=False)
    with pytest.raises(
        AuthSetupError, match=r"^no Kubernetes credentials to check callers with: no service account"
    ):
        reviewer(None)


# ---------------------------------------------------------------- exec credential plugins

PLUGIN = """
import json, os, sys
from pathlib import Path
state = Path(sys.argv[1])
runs = int(state.read_text()) + 1 if state.exists() else 1
state.write_text(str(runs))
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["spec"]["interactive"] is False and os.environ["PLUGIN_ENV"] == "set"
if os.environ.get("PLUGIN_FAIL"):
    sys.exit("cannot reach the identity provider")
status = {"token": f"exec-{runs}"}
if os.environ.get("PLUGIN_EXPIRES"):
    status["expirationTimestamp"] = os.environ["PLUGIN_EXPIRES"]
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}))
"""


def _exec_user(
    tmp_path: Path, api_version: str = "client.authentication.k8s.io/v1", **env: str
) -> dict[str, Any]:
    (tmp_path / "plugin.py").write_text(PLUGIN)
    return {
        "exec": {
            "apiVersion": api_version,
            "command": sys.executable,
            "args": [str(tmp_path / "plugin.py"), str(tmp_path / "runs")],
            "env": [
                {"name": "PLUGIN_ENV", "value": "set"},
                *({"name": k, "value": v} for k, v in env.items()),
            ],
            "interactiveMode": "Never",
        }
    }


def _runs(tmp_path: Path) -> int:
    return int((tmp_path / "runs").read_text())


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
def test_exec_plugin_token_is_kept_until_refused(fake: FakeApi, tmp_path: Path, version: str) -> None:
    fake.tokens = ("exec-1", "exec-2")
    r = reviewer(
        fake.kubeconfig(tmp_path / "kc", user=_exec_user(tmp_path, f"client.authentication.k8s.io/{version}"))
    )
    for _ in range(3):
        assert r.token_review("alice-token").caller == ALICE
    assert _runs(tmp_path) == 1
    fake.tokens = ("exec-2",)  # exec-1 revoked: one 401, the plugin runs again, the review is retried
    assert r.token_review("alice-token").caller == ALICE
    assert _runs(tmp_path) == 2
    assert [s.headers["Authorization"] for s in fake.seen] == ["Bearer exec-1"] * 4 + ["Bearer exec-2"]


def test_exec_plugin_runs_again_once_its_token_expired(fake: FakeApi, tmp_path: Path) -> None:
    past = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)).isoformat()
    fake.tokens = ()
    r = reviewer(fake.kubeconfig(tmp_path / "kc", user=_exec_user(tmp_path, PLUGIN_EXPIRES=past)))
    r.token_review("alice-token")
    r.token_review("alice-token")
    assert _runs(tmp_path) == 2


def test_exec_plugin_token_valid_for_an_hour_is_reused(fake: FakeApi, tmp_path: Path) -> None:
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    fake.tokens = ()
    stamp = later.strftime("%Y-%m-%dT%H:%M:%S.123456789Z")  # nanoseconds, as Go writes them
    r = reviewer(fake.kubeconfig(tmp_path / "kc", user=_exec_user(tmp_path, PLUGIN_EXPIRES=stamp)))
    r.token_review("alice-token")
    r.token_review("alice-token")
    assert _runs(tmp_path) == 1


def test_failing_exec_plugin_is_review_unavailable(fake: FakeApi, tmp_path: Path) -> None:
    r = reviewer(fake.kubeconfig(tmp_path / "kc", user=_exec_user(tmp_path, PLUGIN_FAIL="1")))
    name = Path(sys.executable).name
    assert _unavailable(lambda: r.token_review("alice-token")) == (
        f"winspectserv's own credentials are unusable (exec plugin {name}: exit status 1: "
        "cannot reach the identity provider)"
    )
    assert fake.seen == []


def test_missing_exec_plugin_is_review_unavailable(fake: FakeApi, tmp_path: Path) -> None:
    user = {"exec": {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "no-such-plugin-xyz"}}
    r = reviewer(fake.kubeconfig(tmp_path / "kc", user=user))
    assert _unavailable(lambda: r.token_review("t")).startswith(
        "winspectserv's own credentials are unusable (exec plugin no-such-plugin-xyz: "
    )


def test_exec_plugin_of_an_unknown_api_version_stops_the_start(fake: FakeApi, tmp_path: Path) -> None:
    user = _exec_user(tmp_path, "client.authentication.k8s.io/v2")
    with pytest.raises(
        AuthSetupError, match=r"exec plugin apiVersion 'client\.authentication\.k8s\.io/v2' is not supported"
    ):
        reviewer(fake.kubeconfig(tmp_path / "kc", user=user))


# ---------------------------------------------------------------- client certificates


def _client_certificate() -> tuple[bytes, bytes, bytes]:
    """(CA PEM, client certificate PEM, client key PEM) for the user CN=winspectserv-client."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "client ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "winspectserv-client")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return ca.public_bytes(pem), cert.public_bytes(pem), key_pem


def _temp_files() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("winspectserv-*")}


def test_client_certificate_data_without_a_token(tmp_path: Path) -> None:
    ca, cert, key = _client_certificate()
    api = FakeApi(tmp_path / "api", client_ca_pem=ca, tokens=()).start()
    before = _temp_files()
    try:
        user = {
            "client-certificate-data": base64.b64encode(cert).decode(),
            "client-key-data": base64.b64encode(key).decode(),
        }
        r = reviewer(api.kubeconfig(tmp_path / "kc", user=user))
        assert r.token_review("alice-token").caller == ALICE
        assert api.seen[0].peer == "winspectserv-client"
        assert "Authorization" not in api.seen[0].headers
    finally:
        api.stop()
    assert _temp_files() == before  # the key's temporary file is gone


def test_client_certificate_files_with_a_token(tmp_path: Path) -> None:
    ca, cert, key = _client_certificate()
    (tmp_path / "client.crt").write_bytes(cert)
    (tmp_path / "client.key").write_bytes(key)
    api = FakeApi(tmp_path / "api", client_ca_pem=ca).start()
    try:
        user = {"client-certificate": "client.crt", "client-key": "client.key", "token": SERVER_TOKEN}
        assert (
            reviewer(api.kubeconfig(tmp_path / "kc", user=user)).token_review("alice-token").caller == ALICE
        )
        assert api.seen[0].peer == "winspectserv-client"
        # Without the certificate the server's TLS refuses the connection.
        no_cert = api.kubeconfig(tmp_path / "kc2")
        assert _unavailable(lambda: reviewer(no_cert).token_review("t")).startswith(
            "the API server is unreachable"
        )
    finally:
        api.stop()


# ---------------------------------------------------------------- kubeconfigs winspectserv refuses


@pytest.mark.parametrize(
    ("user", "cluster", "message"),
    [
        ({}, None, "the user has no credentials (token, tokenFile, exec or a client certificate)"),
        (
            {"username": "u", "password": "p"},
            None,
            "basic authentication (username/password) is not supported",
        ),
        ({"auth-provider": {"name": "oidc"}}, None, "auth-provider users are not supported"),
        ({"client-certificate-data": "AAAA"}, None, "client-certificate without client-key"),
        (
            {"client-certificate-data": "AAAA", "client-key-data": "AAAA"},
            None,
            "the client certificate is unusable",
        ),
        ({"exec": {"apiVersion": "client.authentication.k8s.io/v1"}}, None, "exec plugin without a command"),
        (
            None,
            {"server": "ftp://example.com"},
            "the cluster's server 'ftp://example.com' is not an http(s) URL",
        ),
        (None, {"server": "https://example.com:99999"}, "has a bad port"),
        (None, {"certificate-authority-data": "!!"}, "certificate-authority-data is not base64"),
        (None, {"certificate-authority-data": "AAAA"}, "the cluster's certificate authority is unusable"),
        (
            None,
            {"certificate-authority-data": None, "certificate-authority": "missing.pem"},
            "the cluster's certificate authority is unusable",
        ),
    ],
)
def test_unusable_kubeconfig_stops_the_start(
    fake: FakeApi, tmp_path: Path, user: dict[str, Any] | None, cluster: dict[str, Any] | None, message: str
) -> None:
    config = fake.kubeconfig(tmp_path / "kc", user=user, cluster=cluster)
    with pytest.raises(AuthSetupError) as info:
        reviewer(config)
    assert str(info.value).startswith(f"--kubeconfig {config}: ")
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [", "not valid YAML"),
        ("- a\n- b\n", "not a kubeconfig"),
        ("clusters: []\n", "no current-context"),
        ("current-context: x\ncontexts: []\n", "no context named 'x' in contexts"),
        ("current-context: x\ncontexts: 5\n", "no context named 'x' in contexts"),
        (
            "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\n"
            "clusters: [{name: c, cluster: {}}]",
            "the context 'x' names no user: winspectserv needs credentials",
        ),
        (
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n",
            "no cluster named 'c'",
        ),
    ],
)
def test_malformed_kubeconfig_stops_the_start(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "kc"
    path.write_text(text)
    with pytest.raises(AuthSetupError, match="^" + re.escape(f"--kubeconfig {path}: {message}")):
        reviewer(str(path))


def test_missing_kubeconfig_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(
        AuthSetupError, match=re.escape(f"--kubeconfig {tmp_path / 'none'}: No such file or directory")
    ):
        reviewer(str(tmp_path / "none"))


def test_close_closes_kept_connections(fake: FakeApi, tmp_path: Path) -> None:
    r = reviewer(fake.kubeconfig(tmp_path / "kc"))
    r.token_review("alice-token")
    r.close()
    assert r.token_review("alice-token") == TokenResult(ALICE)  # still works, on a new connection
    assert fake.connections == 2
