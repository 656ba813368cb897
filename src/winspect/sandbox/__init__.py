"""The sandbox: a simulated Windows cluster on one machine.

- `kubeapi/`: a Kubernetes API over HTTPS on loopback (bearer tokens, a static
  policy with admin/viewer/nobody users, selectors, Status errors, tables).
- `objects.py`: complete Kubernetes objects from the emulator's cluster model.
- `supervisor.py` / `nodehost.py`: the detached process owning a running
  sandbox, and the process hosting several nodes' servers in large ones.
- `runtime.py`: up / status / down / run, used by `winspect sandbox`.

Each emulated Windows node is a real winspectserv on 127.0.N.x:50051 driving
the emulated pktmon, vfpctrl and hnsdiag of its own state directory.
"""
