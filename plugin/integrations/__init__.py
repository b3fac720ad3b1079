"""scannlite.plugin.integrations: scannlite inside sqlite-utils (:mod:`.sqlite_utils_plugin`) and Datasette
(:mod:`.datasette_plugin`), installed through entry points in pyproject.toml. Import-free.
"""
