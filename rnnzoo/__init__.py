"""rnnzoo: the recurrent and recursive networks of the Deep Learning book, chapter 10, in Keras 3.

Library code is backend-agnostic `keras.ops`; TensorFlow is imported only where it is needed
(export, the `tf.data` pipelines), lazily, so `import rnnzoo` works on the JAX backend without
TensorFlow installed.

`import rnnzoo` itself loads no backend: the subpackages (`rnnzoo.layers`, `rnnzoo.models`, ...)
are imported on first use, and the first use of any of them imports the whole library, which
also registers every rnnzoo class with Keras (`keras.saving.load_model` then needs no
`custom_objects`). The command line (`rnnzoo.app`) relies on this to answer `--help` and
`list` without Keras.
"""

import importlib

__version__ = "0.1.0"

# The library, in the order of its layers (each imports only those before it).
_LIBRARY = ("bptt", "recurrence", "initializers", "cells", "layers", "models", "decoding", "data")
_LAZY = (*_LIBRARY, "diagnostics", "export", "testing", "app")

__all__ = [*_LIBRARY, "__version__"]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'rnnzoo' has no attribute {name!r}")
    for module in _LIBRARY:  # registers every class, as an eager `import rnnzoo` would
        importlib.import_module(f"rnnzoo.{module}")
    return importlib.import_module(f"rnnzoo.{name}")


def __dir__():
    return sorted({*globals(), *_LAZY})
