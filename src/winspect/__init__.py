"""winspect: a network inspector for the Windows container networking stack on Kubernetes."""

from __future__ import annotations


def __getattr__(name: str) -> str:
    # Resolved lazily: importlib.metadata costs ~30 ms, which every emulated
    # tool process and every CLI start would otherwise pay.
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("winspect")
        except PackageNotFoundError:  # running from a source tree without install
            return "0.0.0+unknown"
    raise AttributeError(f"module 'winspect' has no attribute {name!r}")
