"""Writing the Task Library metadata into converted towers (runs in the TensorFlow process).

Why these modules: the metadata description classes and ``MetadataPopulator`` (tflite-support's
where it is installed, else MediaPipe's: :mod:`scannlite.store.bundle.ondevice.tflite_modules`)
are flatbuffer writers and import fine next to TensorFlow, whereas ``from tflite_support import
metadata_writers`` pulls in the Task Library, which cannot share a process with TensorFlow
(docs/python-versions.md has the measurements). One writer for every Python, so a tower gets
the same bytes on 3.11 and 3.13.

The three routes (docs/stack.md, "Task Library facts for embedders"):

* image: one float32 input with ``NormalizationOptions`` mean = std = 127.5 and RGB
  ``ImageProperties``; the ImageEmbedder resizes any picture to the input size;
* text, BERT route (MiniLM): three int32 inputs named ``ids``, ``mask``, ``segment_ids`` in
  the metadata, a ``BertTokenizer`` process unit on the subgraph with MiniLM's vocab.txt;
* text, regex route (word tower): one int32 input with a ``RegexTokenizer`` unit
  (``[^\\w\\']+``) and the word vocabulary packed in the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scannlite.plugin.dual_encoder.words import DELIM_PATTERN
from scannlite.store.bundle.ondevice import tflite_modules

_md_fb = tflite_modules.schemas()[1]
metadata_info, writer_utils = tflite_modules.metadata_writers()

AUTHOR = "scannlite"


def _general(name: str, description: str, licenses: str | None) -> Any:
    return metadata_info.GeneralMd(name=name, version="1", description=description, author=AUTHOR, licenses=licenses)


def _output(dim: int) -> Any:
    return metadata_info.TensorMd(
        name="embedding", description=f"L2-normalised {dim}-d embedding; dot product = cosine similarity."
    )


def image_metadata(model: bytes, dim: int, size: int, licenses: str | None = None) -> bytes:
    input_md = metadata_info.InputImageTensorMd(
        name="image",
        description=f"RGB image, {size}x{size}, scaled to [-1, 1] by (pixel - 127.5) / 127.5.",
        norm_mean=[127.5],
        norm_std=[127.5],
        color_space_type=_md_fb.ColorSpaceType.RGB,
        tensor_type=writer_utils.get_input_tensor_types(model)[0],
    )
    return tflite_modules.populate(
        model,
        general=_general("scannlite image tower", "Image tower of a scannlite dual encoder.", licenses),
        inputs=[input_md.create_metadata()],
        outputs=[_output(dim).create_metadata()],
    )


def regex_text_metadata(model: bytes, dim: int, vocab_path: Path, licenses: str | None = None) -> bytes:
    input_md = metadata_info.InputTextTensorMd(
        name="ids",
        description="Word ids from the regex tokenizer (no lowercasing).",
        tokenizer_md=metadata_info.RegexTokenizerMd(DELIM_PATTERN, str(vocab_path)),
    )
    return tflite_modules.populate(
        model,
        general=_general("scannlite word text tower", "Word text tower of a scannlite dual encoder.", licenses),
        inputs=[input_md.create_metadata()],
        outputs=[_output(dim).create_metadata()],
        associated_files=[str(vocab_path)],
    )


def bert_text_metadata(
    model: bytes,
    dim: int,
    vocab_path: Path,
    licenses: str | None = None,
    name: str = "scannlite MiniLM text tower",
    description: str = "all-MiniLM-L6-v2 (mean pooling) + projection of a scannlite dual encoder.",
) -> bytes:
    names = writer_utils.get_input_tensor_names(bytearray(model))

    def find(part: str) -> str:
        # The converter names inputs like "serving_default_ids:0"; "ids" is also the tail of
        # "segment_ids", so compare the part after the signature prefix exactly.
        for name in names:
            base = name.split(":")[0].removeprefix("serving_default_")
            if base == part:
                return name
        raise ValueError(f"the converted text tower has no input named {part!r} (inputs: {names})")

    bert_inputs = metadata_info.BertInputTensorsMd(
        bytearray(model),
        find("ids"),
        find("mask"),
        find("segment_ids"),
        tokenizer_md=metadata_info.BertTokenizerMd(str(vocab_path)),
    )
    general = _general(name, description, licenses)
    # tflite-support's create_input_tesnor_metadata() orders the three by the model's inputs;
    # MediaPipe's input_md is always ids, mask, segment_ids, so it is put in the model's order here.
    if hasattr(bert_inputs, "input_md"):
        by_tensor = {m.tensor_name: m for m in bert_inputs.input_md}
        inputs = [by_tensor[name].create_metadata() for name in names]
    else:
        inputs = bert_inputs.create_input_tesnor_metadata()
    return tflite_modules.populate(
        model,
        general=general,
        inputs=inputs,
        outputs=[_output(dim).create_metadata()],
        associated_files=bert_inputs.get_tokenizer_associated_files(),
        input_process_units=bert_inputs.create_input_process_unit_metadata(),
    )
