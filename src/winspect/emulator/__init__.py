"""Emulated Windows node tools (pktmon, vfpctrl, hnsdiag) and the cluster model for sandbox and tests."""
