"""winspect: a network inspector for the Windows container networking stack on Kubernetes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("winspect")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"
