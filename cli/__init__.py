"""scannlite.cli: a thin typer layer over :mod:`scannlite.store` and :mod:`scannlite.plugin`."""
