"""`casework`, the command line of shared/API.md (`app.cli.main:main`): the top room,
free to use every other (docs/ARCHITECTURE.md)."""
