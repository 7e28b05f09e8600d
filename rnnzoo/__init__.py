"""rnnzoo: the recurrent and recursive networks of the Deep Learning book, chapter 10, in Keras 3.

Library code is backend-agnostic `keras.ops`; TensorFlow is imported only where it is needed
(export, the `tf.data` pipelines), lazily, so `import rnnzoo` works on the JAX backend without
TensorFlow installed.

`import rnnzoo` itself loads no backend: each subpackage (`rnnzoo.layers`, `rnnzoo.models`, ...)
is imported on first use (`rnnzoo.layers.VanillaRNN` works after `import rnnzoo`). Every class of
the zoo is registered with Keras as soon as Keras is loaded, in either order: `import rnnzoo`
after `import keras` imports `losses`, `cells`, `layers` and `models` at once (the backend is loaded by
then anyway), and `import rnnzoo` before Keras leaves a one-shot import hook that imports them
right after `keras` has been imported (or, when an rnnzoo module
imported Keras, right after that import has finished). So `keras.saving.load_model` of a saved zoo model
(a `Seq2Seq`, a tree classifier, ...) needs no `custom_objects` and no import of the class's
module after `import rnnzoo`. (Keras cannot find them by itself: it imports the module named in
a saved config only for its own packages, `keras`, `keras_hub`, ...) The command line
(`rnnzoo.app`) relies on the laziness to answer `--help` and `list` without Keras.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys

__version__ = "0.1.0"

# The library, in the order of its layers (each imports only those before it).
_LIBRARY = ("bptt", "recurrence", "initializers", "losses", "cells", "layers", "models", "decoding", "data")
_LAZY = (*_LIBRARY, "diagnostics", "export", "testing", "app")

__all__ = [*_LIBRARY, "__version__"]


_REGISTERING = ("losses", "cells", "layers", "models")  # every `register_keras_serializable` class of the library


def _register_with_keras():
    for name in _REGISTERING:
        importlib.import_module(f"rnnzoo.{name}")


def _initializing(name):
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


class _RegisterWithKeras(importlib.abc.MetaPathFinder):
    """Registers the zoo's classes once Keras is loaded and no rnnzoo module is half-imported.

    It finds nothing itself: for `keras` and `rnnzoo.*` it takes the spec the path finder
    gives and wraps that loader's `exec_module`, so every module loads exactly as without it;
    after each such module has run, `_register_when_ready` checks whether registering is safe
    (Keras imported by an rnnzoo module is registered when that import chain has finished).
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras" and not fullname.startswith("rnnzoo."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        exec_module = loader.exec_module

        def exec_then_register(module):
            exec_module(module)
            _register_when_ready(fullname)

        try:
            loader.exec_module = exec_then_register  # this loader instance only
        except AttributeError:  # a loader that takes no attributes: this module does not trigger it
            pass
        return spec


def _register_when_ready(current):
    if not any(isinstance(finder, _RegisterWithKeras) for finder in sys.meta_path):
        return  # registered already
    if "keras" not in sys.modules or _initializing("keras") and current != "keras":
        return
    if any(_initializing(name) for name in list(sys.modules) if name.startswith("rnnzoo.") and name != current):
        return  # an rnnzoo module is mid-import (it imported Keras): register when its import has finished
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _RegisterWithKeras)]
    try:
        _register_with_keras()
    except Exception as error:  # never break the user's import: say what to do instead
        import warnings

        warnings.warn(f"rnnzoo could not register its classes with Keras ({type(error).__name__}: {error}); "
                      "import `rnnzoo.models` before `keras.saving.load_model`.", ImportWarning, stacklevel=2)


if "keras" in sys.modules:
    # Keras, and so its backend, is loaded already: register every class with Keras now, so that
    # `keras.saving.load_model` needs no `custom_objects` after `import keras, rnnzoo`.
    _register_with_keras()
elif not any(isinstance(finder, _RegisterWithKeras) for finder in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWithKeras())


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'rnnzoo' has no attribute {name!r}")
    return importlib.import_module(f"rnnzoo.{name}")


def __dir__():
    return sorted({*globals(), *_LAZY})
