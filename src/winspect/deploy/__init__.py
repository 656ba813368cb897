"""Deployment of winspectserv, client side: the manifests, install and uninstall, the certificates.

- `manifests`: the namespace, ServiceAccount and DaemonSet shipped as package
  data (data/*.yaml, copied to deploy/base by `make manifests`), rendered
  for an image and a port.
- `readiness`: pure functions telling, per Windows node, whether the
  DaemonSet's pod is up to date and ready, and why not.
- `install`: server-side apply, the rollout wait, removal.
- `pki`: winspect's CA and the node servers' certificate: made, read, checked.
- `tls_objects`: the Secret and ConfigMap that hold them in the cluster, and when to renew them.
"""
