"""Kubernetes' in-cluster configuration: where a pod finds its service account's credentials."""

from __future__ import annotations

# The token, the cluster's CA (ca.crt) and the pod's namespace, mounted into every pod.
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
