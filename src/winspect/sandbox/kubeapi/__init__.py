"""The sandbox's Kubernetes API: TLS on loopback, bearer tokens, read-only core objects."""
