"""node/windows/parsers."""
