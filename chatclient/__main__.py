"""`python -m chatclient`: the command-line chat (see `chatclient/cli.py`)."""

from chatclient.cli import main

main()
