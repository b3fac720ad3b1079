"""tflite-support's compiled metadata version helper, run in a device process (tests only)."""


def real_min_parser_version(metadata_buffer: bytes) -> str:
    from tensorflow_lite_support.metadata.cc.python import _pywrap_metadata_version

    return _pywrap_metadata_version.GetMinimumMetadataParserVersion(bytes(metadata_buffer))
