"""rnnzoo: the recurrent and recursive networks of the Deep Learning book, chapter 10, in Keras 3.

Library code is backend-agnostic `keras.ops`; TensorFlow is imported only where it is needed
(export, the `tf.data` pipelines), lazily, so `import rnnzoo` works on the JAX backend without
TensorFlow installed.

`import rnnzoo` itself loads no backend: each subpackage (`rnnzoo.layers`, `rnnzoo.models`, ...)
is imported on first use (`rnnzoo.layers.VanillaRNN` works after `import rnnzoo`). Importing a
subpackage registers its classes with Keras: `keras.saving.load_model` of a saved zoo model needs
no `custom_objects` once `rnnzoo.models` (which imports the layers and cells it uses) or the
subpackage of its classes has been imported, and `import rnnzoo` after `import keras` imports
`cells`, `layers` and `models` at once (the backend is loaded by then anyway). The command line (`rnnzoo.app`) relies on this to
answer `--help` and `list` without Keras.
"""

import importlib
import sys

__version__ = "0.1.0"

# The library, in the order of its layers (each imports only those before it).
_LIBRARY = ("bptt", "recurrence", "initializers", "losses", "cells", "layers", "models", "decoding", "data")
_LAZY = (*_LIBRARY, "diagnostics", "export", "testing", "app")

__all__ = [*_LIBRARY, "__version__"]


if "keras" in sys.modules:
    # Keras, and so its backend, is loaded already: register every class with Keras now, so that
    # `keras.saving.load_model` needs no `custom_objects` after `import keras, rnnzoo`.
    for _name in ("losses", "cells", "layers", "models"):
        importlib.import_module(f"rnnzoo.{_name}")


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'rnnzoo' has no attribute {name!r}")
    return importlib.import_module(f"rnnzoo.{name}")


def __dir__():
    return sorted({*globals(), *_LAZY})
