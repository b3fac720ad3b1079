"""CLIP's contrastive loss with in-batch negatives and a learnable temperature (TensorFlow).

For a batch of B matching (image, caption) pairs, logits = exp(t) * I @ T^T (both
L2-normalised); pair i is the right answer in row i and in column i, every other entry of its
row and column is a negative. The loss is the mean of the two cross-entropies. The log-scale
``t`` is trained with the towers; exp(t) is capped at 100 as in CLIP, so training cannot
collapse into an infinitely sharp softmax.
"""

from __future__ import annotations

import math

import tensorflow as tf

MAX_LOGIT_SCALE = 100.0


def initial_log_scale(temperature: float) -> float:
    return math.log(1.0 / temperature)


def clip_loss(image_vectors: tf.Tensor, text_vectors: tf.Tensor, log_scale: tf.Variable) -> tf.Tensor:
    scale = tf.minimum(tf.exp(log_scale), MAX_LOGIT_SCALE)
    logits = scale * tf.matmul(image_vectors, text_vectors, transpose_b=True)
    labels = tf.range(tf.shape(logits)[0])
    per_image = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    per_text = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.transpose(logits))
    return 0.5 * (tf.reduce_mean(per_image) + tf.reduce_mean(per_text))
