"""Deployment of winspectserv, client side: the manifests, install and uninstall, the installed port.

- `manifests`: the namespace, ServiceAccount and DaemonSet shipped as package
  data (data/*.yaml, copied to deploy/base by `make manifests`), rendered
  for an image and a port.
- `readiness`: pure functions telling, per Windows node, whether the
  DaemonSet's pod is up to date and ready, and why not.
- `install`: server-side apply, the rollout wait, removal.
- `lookup`: the port of the installed DaemonSet, for the client.
- `names`: the objects' names and the defaults.
"""
