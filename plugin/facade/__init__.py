"""scannlite.plugin.facade: what the CLI and the Python API (``import scannlite``) both call.

:mod:`.database` (``Database``, ``open``, ``create``: every catalog operation as plain dicts, which the CLI prints
for ``--json``) with the reports it returns (:mod:`.reports`: info, build), the inputs ``add`` takes
(:mod:`.records`) and ``export``'s choice of embedder (:mod:`.exporting`); :mod:`.search` (search by vector, text
or image), :mod:`.queries` (the query sample) and :mod:`.settings` (the embedders a catalog records). Import-free.
"""
