"""`python -m app` is the `billhook` command."""

from app.cli import main

main()
