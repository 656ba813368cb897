"""`python -m winspect.cli`: the winspect command line."""

from winspect.cli.main import run

if __name__ == "__main__":
    run()
