"""scannlite.plugin.ingest.add: embedding collections of texts and images.

Into a catalog (:mod:`.add`), or into Parquet shards (:mod:`.embed_job`) here or on Ray Data (:mod:`.ray_engine`).
Import-free.
"""
