"""The package: imports without TensorFlow on JAX, the `rnnzoo` command, doctest collection."""

import os
import subprocess
import sys
import textwrap
import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command, env=None, timeout=300):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=environment, cwd=ROOT)


JAX_WITHOUT_TENSORFLOW = textwrap.dedent(
    """
    import sys

    class NoTensorFlow:
        # Makes every `import tensorflow*` fail, as if TensorFlow were not installed.
        def find_spec(self, name, path=None, target=None):
            if name.startswith("tensorflow"):
                raise ImportError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, NoTensorFlow())

    import keras
    import numpy as np

    import rnnzoo
    import rnnzoo.export  # TensorFlow is imported lazily, inside the export functions
    from rnnzoo.layers import VanillaRNN

    assert keras.backend.backend() == "jax", keras.backend.backend()
    layer = VanillaRNN(4, output_units=2, return_sequences=True)
    print("shape", tuple(layer(np.ones((2, 5, 3), "float32")).shape))

    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, VanillaRNN(4, output_units=2, return_sequences=True)(inputs))
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(np.ones((2, 5, 3), "float32"), np.zeros((2, 5), "int32"), verbose=0)
    print("loss", history.history["loss"][0])
    print("tensorflow modules", sorted(m for m in sys.modules if m.startswith("tensorflow")))
    """
)


def test_import_and_train_on_jax_without_tensorflow():
    done = run([sys.executable, "-c", JAX_WITHOUT_TENSORFLOW], env={"KERAS_BACKEND": "jax"})
    assert done.returncode == 0, done.stderr[-3000:]
    assert "shape (2, 5, 2)" in done.stdout
    assert "tensorflow modules []" in done.stdout, done.stdout
    loss = float(done.stdout.split("loss ")[1].split()[0])
    assert 0 < loss < 10


def test_the_blocker_really_blocks_tensorflow():
    # Guards the test above: with the blocker, `import tensorflow` must fail.
    code = JAX_WITHOUT_TENSORFLOW.split("import keras")[0] + "import tensorflow\n"
    done = run([sys.executable, "-c", code], env={"KERAS_BACKEND": "jax"})
    assert done.returncode != 0
    assert "blocked by the test" in done.stderr


def test_cli_help():
    done = run(["rnnzoo", "--help"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: rnnzoo")
    assert "list" in done.stdout


def test_cli_list():
    done = run(["rnnzoo", "list"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split()[:2] == ["name", "kind"]
    names = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert names["vanilla_rnn"] == "layer"
    assert names["delayed_recall"] == "task"


def test_cli_list_kind():
    done = run(["rnnzoo", "list", "--kind", "task"])
    assert done.returncode == 0, done.stderr
    kinds = {line.split()[1] for line in done.stdout.splitlines()[1:]}
    assert kinds == {"task"}
    assert "vanilla_rnn " not in done.stdout


def test_python_dash_m_rnnzoo_list():
    done = run([sys.executable, "-m", "rnnzoo", "list"])
    assert done.returncode == 0, done.stderr
    assert any(line.split()[:2] == ["vanilla_rnn", "layer"] for line in done.stdout.splitlines())


def test_doctests_are_collected():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        options = tomllib.load(f)["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" in options["addopts"].split()
    assert set(options["testpaths"]) == {"tests", "rnnzoo"}
    done = run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "rnnzoo"])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    collected = done.stdout.splitlines()
    for item in [
        "rnnzoo/layers/vanilla_rnn.py::rnnzoo.layers.vanilla_rnn.VanillaRNN",
        "rnnzoo/cells/vanilla_rnn_cell.py::rnnzoo.cells.vanilla_rnn_cell.VanillaRNNCell",
        "rnnzoo/data/tasks.py::rnnzoo.data.tasks.delayed_recall",
        "rnnzoo/models/vanilla_tagger.py::rnnzoo.models.vanilla_tagger.vanilla_tagger",
    ]:
        assert item in collected, (item, collected)


# Where a time loop may live: the engine, the one sequence layer, the vanilla cell's explicit BPTT
# (its whole-sequence hook), the decoders' search loops, the tree layer's level loop (its own
# engine, section 10.6) and the diagnostics' Jacobian products. Every other loop over time must go
# through `rnnzoo.layers.Recurrent` (e.g. as a feeding policy, a `StepFunction` cell).
LOOP_OWNERS = {
    "rnnzoo/recurrence.py", "rnnzoo/layers/recurrent.py", "rnnzoo/bptt.py", "rnnzoo/bptt_wiring.py",
    "rnnzoo/decoding/greedy.py", "rnnzoo/decoding/beam_search.py", "rnnzoo/layers/tree_layer.py",
    "rnnzoo/diagnostics/spectrum.py",
    "rnnzoo/models/seq2seq/seq2seq_tokenizer.py",  # the subword cut: a loop over the pieces of words, no cell
}


def test_recurrent_is_the_only_sequence_loop_over_cells():
    offenders = []
    for folder, _, files in os.walk(os.path.join(ROOT, "rnnzoo")):
        for name in files:
            path = os.path.relpath(os.path.join(folder, name), ROOT)
            if not name.endswith(".py") or path in LOOP_OWNERS:
                continue
            with open(os.path.join(ROOT, path), encoding="utf-8") as f:
                source = f.read()
            for loop in ("recurrence.scan(", "ops.scan(", "ops.fori_loop(", "ops.while_loop(", "tf.while_loop("):
                if loop in source:
                    offenders.append(f"{path}: {loop}")
    assert not offenders, offenders


def test_no_cell_imports_a_layer_and_no_module_imports_a_private_name():
    import ast

    problems = []
    for folder, _, files in os.walk(os.path.join(ROOT, "rnnzoo")):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            relative = os.path.relpath(path, ROOT)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rnnzoo"):
                    if relative.startswith("rnnzoo/cells/") and node.module.startswith("rnnzoo.layers"):
                        problems.append(f"{relative}: a cell imports {node.module}")
                    # A private name may be shared inside one subpackage (e.g. `rnnzoo.export`), not across.
                    same_package = os.path.dirname(relative).replace(os.sep, ".") == node.module.rsplit(".", 1)[0]
                    problems += [f"{relative}: imports {node.module}.{a.name}" for a in node.names
                                 if a.name.startswith("_") and not a.name.startswith("__") and not same_package]
                if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in (
                        "bptt", "bptt_wiring", "recurrence", "foundation") and node.attr.startswith("_"):
                    problems.append(f"{relative}: uses {node.value.id}.{node.attr}")
    assert not problems, problems
