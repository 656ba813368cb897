"""`python -m winspect.cli`: the winspect command line."""

from winspect.cli.main import main

if __name__ == "__main__":
    main()
