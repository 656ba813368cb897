"""Access to a cluster's Kubernetes API, shared by the client and deploy (neither imports the other).

- `kubeconfig`: which cluster, user and namespace, resolved as kubectl does.
- `cluster`: one API server through lightkube; every failure a one-line error.
- `names`: the names and defaults of winspect's objects in the cluster.
- `installed`: the port of the installed winspectserv DaemonSet.
"""
