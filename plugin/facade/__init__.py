"""scannlite.plugin.facade: what the CLI and the Python API (``import scannlite``) both call.

:mod:`.database` (``Database``, ``open``, ``create``: every catalog operation as plain dicts, which the CLI prints
for ``--json``), :mod:`.search` (search by vector, text or image) and :mod:`.settings` (the embedders a catalog
records). Import-free.
"""
