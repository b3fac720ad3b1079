"""What the Task Library makes of a TFLite model: ``describe_model``, from its flatbuffer and metadata alone.

Its inputs and outputs, their processing units, tokenizer files and problems, read without TensorFlow or
tflite-support's native code, so that every process applies one embedder policy (docs/ondevice-format.md, 3.2).
"""

from __future__ import annotations

from dataclasses import asdict

from scannlite.store.bundle.ondevice.bundle_file import (
    _NOT_TFLITE,
    _TOKENIZERS,
    _bundle_from,
    _count,
    _kind,
    _load_model,
    _name,
    _parser,
    _schemas,
    _text,
    _unit_files,
)
from scannlite.store.bundle.ondevice.errors import IndexFormatError


def _tensor_facts(sub, tensor_index: int) -> dict:
    if not 0 <= tensor_index < sub.TensorsLength():
        raise IndexFormatError(f"{_NOT_TFLITE}: subgraph refers to missing tensor {tensor_index}")
    t = sub.Tensors(tensor_index)
    return {
        "tensor": tensor_index,
        "name": _text(t.Name()),
        "shape": [int(v) for v in t.ShapeAsNumpy()] if t.ShapeLength() else [],
        "shape_signature": [int(v) for v in t.ShapeSignatureAsNumpy()] if t.ShapeSignatureLength() else None,
        "dtype": _name(_schemas()[0].TensorType, t.Type()).lower(),  # "float32", "int32", "string"
        "quantization": None
        if (q := t.Quantization()) is None or not q.ScaleLength()
        else {
            "scale": [float(v) for v in q.ScaleAsNumpy()],
            "zero_point": [int(v) for v in q.ZeroPointAsNumpy()] if q.ZeroPointLength() else [],
        },
    }


def _metadata_facts(facts: dict, tensor_md, side: str, shared_tokenizer, problems: list[str]) -> None:
    """Fill the metadata-derived fields of one tensor's facts."""
    _, m = _schemas()
    units = (tensor_md.processUnits or []) if tensor_md is not None else []
    kinds = [_kind(u) for u in units]
    facts.update(
        {
            "metadata_name": _text(getattr(tensor_md, "name", None)),
            "process_units": kinds,
            "content": None,
            "color_space": None,
            "normalization": None,
            "associated_files": [
                {"name": _text(f.name), "type": _name(m.AssociatedFileType, f.type)}
                for f in getattr(tensor_md, "associatedFiles", None) or []
            ],
        }
    )
    content = getattr(tensor_md, "content", None)
    if content is not None and content.contentPropertiesType:
        kind = _name(m.ContentProperties, content.contentPropertiesType)
        facts["content"] = kind.replace("Properties", "").lower()
        if kind == "ImageProperties" and content.contentProperties is not None:
            facts["color_space"] = _name(m.ColorSpaceType, content.contentProperties.colorSpace)
    norms = [u for u in units if u.optionsType == m.ProcessUnitOptions.NormalizationOptions]
    if norms:  # options are None if the unit's table is missing; mean and std may be numpy arrays
        values = {key: getattr(norms[0].options, key, None) for key in ("mean", "std")}
        facts["normalization"] = {key: [] if v is None else [float(x) for x in v] for key, v in values.items()}
    for kind in {k for k in kinds if kinds.count(k) > 1}:
        problems.append(f"{side} {facts['tensor']} has several {kind} units (the Task Library expects at most one)")
    if side == "input":
        own = [u for u in units if _kind(u) in _TOKENIZERS]
        unit, source = (own[0], "tensor") if own else (shared_tokenizer, "subgraph" if shared_tokenizer else None)
        facts.update(
            {
                "tokenizer": _TOKENIZERS[_kind(unit)] if unit is not None else None,
                "tokenizer_source": source,
                "tokenizer_files": [_text(f.name) for f in _unit_files(unit)],
                "regex_pattern": _text(getattr(getattr(unit, "options", None), "delimRegexPattern", None)),
            }
        )


@_parser
def describe_model(data: bytes) -> dict:
    """A JSON-able description of a TFLite model, as the Task Library would see it.

    Keys: ``inputs``/``outputs`` (subgraph 0, in order: name, shape, dtype, quantization,
    metadata name, process units, tokenizer kind and files, normalization, content kind,
    color space, associated files), ``custom_ops`` and ``flex_ops``, ``builtin_ops``,
    ``has_metadata``, ``min_parser_version``, ``subgraph_process_units``, ``packed_files``,
    ``associated_files`` (all of them), ``index`` (name, output, size) and ``problems``.
    """
    model = _load_model(data)
    schema, _ = _schemas()
    bundle, meta = _bundle_from(data, model)
    problems = list(bundle.problems)

    custom, builtins = [], set()
    for i in range(_count(model.OperatorCodesLength(), len(data), "operator code")):
        op = model.OperatorCodes(i)
        code = max(op.BuiltinCode(), op.DeprecatedBuiltinCode())
        if code == schema.BuiltinOperator.CUSTOM:
            custom.append(_text(op.CustomCode()) or "")
        else:
            builtins.add(_name(schema.BuiltinOperator, code))

    n_sub = _count(model.SubgraphsLength(), len(data), "subgraph")
    if n_sub == 0:
        raise IndexFormatError(f"{_NOT_TFLITE}: the model has no subgraph")
    sub = model.Subgraphs(0)
    tensors = {
        side: [_tensor_facts(sub, int(at(i))) for i in range(_count(length(), len(data), side))]
        for side, length, at in (("input", sub.InputsLength, sub.Inputs), ("output", sub.OutputsLength, sub.Outputs))
    }

    sub_md = (meta.subgraphMetadata or [None])[0] if meta is not None else None
    sub_units: dict[str, list] = {"input": [], "output": []}
    shared, tensor_mds = None, {}
    if sub_md is not None:
        sub_units = {
            "input": [_kind(u) for u in sub_md.inputProcessUnits or []],
            "output": [_kind(u) for u in sub_md.outputProcessUnits or []],
        }
        tokenizers = [u for u in sub_md.inputProcessUnits or [] if _kind(u) in _TOKENIZERS]
        shared = tokenizers[0] if tokenizers else None
        if len(tokenizers) > 1:
            problems.append("subgraph input_process_units holds several tokenizers")
        tensor_mds = {"input": sub_md.inputTensorMetadata, "output": sub_md.outputTensorMetadata}
        for side, mds in tensor_mds.items():
            if mds is not None and len(mds) != len(tensors[side]):
                problems.append(f"metadata describes {len(mds)} {side} tensors but the model has {len(tensors[side])}")
    if meta is not None and len(meta.subgraphMetadata or []) != n_sub:
        problems.append(f"metadata describes {len(meta.subgraphMetadata or [])} subgraphs but the model has {n_sub}")
    for side, facts_list in tensors.items():
        mds = tensor_mds.get(side)
        for i, facts in enumerate(facts_list):
            _metadata_facts(facts, mds[i] if mds is not None and i < len(mds) else None, side, shared, problems)

    index = (
        None
        if bundle.index_name is None
        else {
            "name": bundle.index_name,
            "output": bundle.index_output,
            "bytes": len(bundle.index_file) if bundle.index_file is not None else None,
        }
    )
    return {
        "tflite_schema_version": int(model.Version()),
        "description": _text(model.Description()),
        "subgraphs": n_sub,
        "inputs": tensors["input"],
        "outputs": tensors["output"],
        "custom_ops": custom,
        "flex_ops": [c for c in custom if c.startswith("Flex")],
        "builtin_ops": sorted(builtins),
        "has_metadata": bundle.has_metadata,
        "metadata_name": _text(meta.name) if meta is not None else None,
        "min_parser_version": bundle.min_parser_version,
        "subgraph_process_units": sub_units,
        "packed_files": [{"name": k, "bytes": len(v)} for k, v in bundle.files.items()],
        "associated_files": [asdict(f) for f in bundle.associated_files],
        "index": index,
        "problems": problems,
    }
