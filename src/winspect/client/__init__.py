"""winspect client engine: kubeconfig and discovery, targets, gRPC fan-out, rendering.

Nothing here prints to the terminal except the renderers, which write to
the streams they are given; the CLI (winspect.cli) owns flags and exit codes.
"""
