"""The plugin layer's answer to the store's :class:`~scannlite.store.bundle.device_side.DeviceSide`.

Imported in store/CLI processes, so it imports nothing that loads tflite-support: each call
names a function of :mod:`scannlite.plugin.device.exporter` and runs it in a device worker.
"""

from __future__ import annotations

from scannlite.store.workers.boundary import run_in

_EXPORTER = "scannlite.plugin.device.exporter"


class DeviceProcesses:
    """The store's :class:`~scannlite.store.bundle.device_side.DeviceSide`: each call runs the
    function of the same name of :mod:`~scannlite.plugin.device.exporter` in a device worker
    (building and querying in warm ones; checking in a fresh one, so it opens the bundle cold)."""

    def builder_index(self, **kwargs):
        return run_in("device", f"{_EXPORTER}:builder_index", **kwargs)

    def write_bundle(self, **kwargs):
        return run_in("device", f"{_EXPORTER}:write_bundle", **kwargs)

    def check_bundle(self, **kwargs):
        # A process of its own that never saw the bundle: it opens it cold, as an app.
        return run_in("device", f"{_EXPORTER}:check_bundle", fresh=True, **kwargs)

    def query_bundle(self, **kwargs):
        return run_in("device", f"{_EXPORTER}:query_bundle", **kwargs)

    def embed_bundle(self, **kwargs):
        return run_in("device", f"{_EXPORTER}:embed_bundle", **kwargs)
