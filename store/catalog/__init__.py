"""scannlite.store.catalog.catalog: the catalog, one SQLite database plus immutable Parquet segments (docs/schema.md).

:mod:`.catalog` (``Catalog``) with its creation (:mod:`.creating`), adds (:mod:`.adding`) and vector reads
(:mod:`.vectors`); :mod:`.schema`, :mod:`.segments`, the inputs ``add`` accepts (:mod:`.readers`, :mod:`.batch`),
the writer lock (:mod:`.locking`), upkeep (:mod:`.maintenance`: check, compact, gc), the chunked ``IN`` helper
and the write transaction (:mod:`.sql`), the rows of the index (:mod:`.index_rows`: models, codes, snapshots) and
the item queries behind builds and snapshots (:mod:`.item_rows`), one snapshot as Parquet (:mod:`.export_parquet`) and synthetic data for demos and tests
(:mod:`.synthetic`).
Import-free, so that naming a module here loads only that module.
"""
