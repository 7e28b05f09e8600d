"""rnnzoo: the recurrent and recursive networks of the Deep Learning book, chapter 10, in Keras 3.

Library code is backend-agnostic `keras.ops`; TensorFlow is imported only where it is needed
(export, the `tf.data` pipelines), lazily, so `import rnnzoo` works on the JAX backend without
TensorFlow installed.
"""

__version__ = "0.1.0"

from rnnzoo import bptt, cells, data, layers, models, recurrence  # noqa: E402

__all__ = ["bptt", "cells", "data", "layers", "models", "recurrence", "__version__"]

from rnnzoo import decoding  # noqa: E402

__all__ += ["decoding"]
