"""The plugin layer's answer to the store's :class:`~scannlite.store.device_side.DeviceSide`.

Imported in store/CLI processes, so it imports nothing that loads tflite-support: each call
names a function of :mod:`scannlite.plugin.device.exporter` and runs it in a device process.
"""
from __future__ import annotations

from scannlite.store.boundary import run_in

_EXPORTER = "scannlite.plugin.device.exporter"


class DeviceProcesses:
    """The store's :class:`~scannlite.store.device_side.DeviceSide`: each call runs the
    function of the same name of :mod:`~scannlite.plugin.device.exporter` in a fresh device
    process (build and check in two different ones, so the check opens the bundle cold)."""

    def build_bundle(self, **kwargs):
        return run_in("device", f"{_EXPORTER}:build_bundle", **kwargs)

    def check_bundle(self, **kwargs):
        return run_in("device", f"{_EXPORTER}:check_bundle", **kwargs)

    def query_bundle(self, **kwargs):
        return run_in("device", f"{_EXPORTER}:query_bundle", **kwargs)
