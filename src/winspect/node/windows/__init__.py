"""node/windows."""
