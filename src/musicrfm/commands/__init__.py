"""One module per CLI verb. Each defines `register(subparsers)`; `cli.main` discovers them.

A command module must be cheap to import (no torch at top level): import heavy things inside
the function that runs the verb, so `musicrfm --help` stays instant.
"""
