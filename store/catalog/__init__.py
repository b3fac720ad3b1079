"""scannlite.store.catalog.catalog: the catalog, one SQLite database plus immutable Parquet segments (docs/schema.md).

:mod:`.catalog` (``Catalog``), :mod:`.schema`, :mod:`.segments`, the inputs ``add`` accepts (:mod:`.readers`,
:mod:`.batch`), the one writer lock (:mod:`.locking`), upkeep (:mod:`.maintenance`: check, compact, gc), one
snapshot as Parquet (:mod:`.export_parquet`) and synthetic data for demos and tests (:mod:`.synthetic`).
Import-free, so that naming a module here loads only that module.
"""
