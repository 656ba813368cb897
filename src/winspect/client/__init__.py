"""winspect client engine: discovery of nodes and pods, targets, gRPC fan-out, rendering.

Nothing here prints to the terminal except the renderers, which write to
the streams they are given; the CLI (winspect.cli) owns flags and exit codes.
"""
