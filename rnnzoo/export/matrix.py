"""The export matrix: every layer and model of the zoo, small, in every export format, with its parity.

`CASES` maps a case name to a builder of a small configuration of one catalogue entry
(`Case.entry`, a name of `rnnzoo list`): the model (layers are wrapped in a functional model),
input batches of several batch sizes and lengths, and how to export it. `run_case` exports one
case to a SavedModel, TFLite (builtin ops only) and ONNX, runs each artifact on the batches and
returns one result per format; `format_table` writes the README's table from the results of
both backends (`docs/export_matrix/<backend>.json`, written by `python -m rnnzoo.export.matrix`
and checked by the tests).
"""

import dataclasses
import json
import os
import time
import traceback
import warnings

import keras
import numpy as np
from keras import ops

from rnnzoo import cells, layers, models
from rnnzoo.models import length_models

FORMATS = ("saved_model", "tflite", "onnx")
TOLERANCE = 1e-5
SHAPES = [(1, 1), (2, 4), (4, 9)]  # (batch, time): unseen at export, time dynamic
FEATURES, UNITS, CLASSES = 3, 4, 3


@dataclasses.dataclass
class Case:
    entry: str  # the catalogue entry, or None for a configuration the catalogue has no entry for
    build: object  # () -> (model, batches); batches: list of input structures
    polymorphic_shapes: object = None  # jax2tf shapes declaring shared lengths (None: all independent)
    decoder: str = None  # Seq2Seq: the token signature exported ("greedy")
    note: str = ""


def _rng(seed=0):
    return np.random.default_rng(seed)


def _sequences(features=FEATURES, shapes=SHAPES, seed=0):
    rng = _rng(seed)
    return [rng.normal(size=(b, t, features)).astype("float32") for b, t in shapes]


def _layer_model(layer, features=FEATURES):
    inputs = keras.Input((None, features), name="x")
    return keras.Model(inputs, layer(inputs))


def _recurrent(cell, **kwargs):
    def build():
        return _layer_model(layers.Recurrent(cell(), return_sequences=True, **kwargs)), _sequences()

    return build


def vanilla_rnn():
    inputs = keras.Input((None, FEATURES), name="x")
    x = keras.layers.Masking(0.0)(inputs)
    outputs = layers.VanillaRNN(UNITS, output_units=2, return_sequences=True, bias_initializer="random_normal")(x)
    batches = _sequences()
    batches[-1][0, 5:] = 0.0  # padding
    return keras.Model(inputs, outputs), batches


def vanilla_tagger():
    return models.vanilla_tagger(num_classes=2, features=FEATURES, units=UNITS), _sequences()


def _tree_batches(vocabulary_size, seed=0):
    from rnnzoo.data import trees as T

    vocabulary = T.build_vocabulary(T.random_binary_trees(10, min_nodes=3, max_nodes=17, seed=seed))
    batches = []
    for num_trees, low, high, s in [(1, 1, 1, 1), (2, 3, 9, 2), (3, 5, 17, 3)]:
        trees = T.random_binary_trees(num_trees, min_nodes=low, max_nodes=high, seed=seed + s)
        encoded = T.split_inputs_targets(T.encode_trees(trees, vocabulary))[0]
        batches.append(encoded)
    return vocabulary, batches


def _tree_layer_model(combine):
    def build():
        vocabulary, batches = _tree_batches(6)
        token_ids = keras.Input((None,), dtype="int32", name="token_ids")
        children = keras.Input((None, 2), dtype="int32", name="children")
        schedule = keras.Input((None, None), dtype="int32", name="schedule")
        x = keras.layers.Embedding(len(vocabulary), 3)(token_ids)
        root, nodes = layers.TreeLayer(UNITS, combine=combine)([x, children, schedule])
        model = keras.Model({"token_ids": token_ids, "children": children, "schedule": schedule}, [root, nodes])
        return model, [{k: b[k] for k in ("token_ids", "children", "schedule")} for b in batches]

    return build


def _tree_classifier(combine):
    def build():
        vocabulary, batches = _tree_batches(6)
        model = models.tree_classifier(len(vocabulary), 5, units=UNITS, embedding_dim=3, combine=combine)
        return model, [{k: b[k] for k in ("token_ids", "children", "schedule")} for b in batches]

    return build


def bidirectional():
    return _layer_model(layers.Bidirectional(layers.VanillaRNN(UNITS, return_sequences=True))), _sequences()


def deep_rnn():
    layer = layers.DeepRNN([cells.VanillaRNNCell(UNITS), keras.layers.GRUCell(UNITS)], residual=True,
                           return_sequences=True)
    return _layer_model(layer), _sequences()


def _per_step_tagger(layer, name):
    """The training recipes' taggers: a recurrent layer, then a per-step `Dense` softmax layer's logits."""

    def build():
        inputs = keras.Input((None, FEATURES), name="x")
        logits = keras.layers.Dense(2, name="logits")(layer()(inputs))
        return keras.Model(inputs, logits, name=name), _sequences()

    return build


def vanilla_regressor():
    inputs = keras.Input((None, FEATURES), name="x")
    outputs = layers.VanillaRNN(UNITS, output_units=1, bias_initializer="random_normal")(inputs)
    return keras.Model(inputs, outputs, name="vanilla_regressor"), _sequences()


def _labels(shapes=SHAPES, classes=CLASSES, seed=1):
    rng = _rng(seed)
    return [rng.integers(0, classes, size=(b, t)).astype("int32") for b, t in shapes]


def output_recurrent_rnn():
    x = keras.Input((None, FEATURES), name="x")
    labels = keras.Input((None,), dtype="int32", name="labels")
    outputs = layers.OutputRecurrentRNN(UNITS, CLASSES)(x, labels=labels)
    batches = [{"x": a, "labels": b} for a, b in zip(_sequences(), _labels())]
    return keras.Model({"x": x, "labels": labels}, outputs), batches


SHARED_TIME = [{"x": f"(batch, time, {FEATURES})", "labels": "(batch, time)"}]


def _output_recurrent_tagger(hidden_recurrence, closed_loop=False):
    def build():
        model = models.output_recurrent_tagger(CLASSES, FEATURES, units=UNITS, hidden_recurrence=hidden_recurrence,
                                               scheduled_sampling=hidden_recurrence)
        if closed_loop:
            return models.closed_loop_tagger(model), _sequences()
        return model, [{"x": a, "labels": b} for a, b in zip(_sequences(), _labels())]

    return build


def _sequence_to_one(regressor):
    def build():
        if regressor:
            model = models.sequence_regressor(FEATURES, units=UNITS, mask_value=0.0)
        else:
            model = models.sequence_classifier(2, FEATURES, units=UNITS, mask_value=0.0)
        batches = _sequences()
        batches[-1][1, 6:] = 0.0
        return model, batches

    return build


def _conditional_generator(generation):
    def build():
        model = models.conditional_generator(vocabulary_size=5, context_dim=FEATURES, units=UNITS)
        rng = _rng(2)
        contexts = [rng.normal(size=(b, FEATURES)).astype("float32") for b, _ in SHAPES]
        if generation:
            return models.conditional_generation_model(model, max_length=6), contexts
        labels = [rng.integers(0, 5, size=(b, t)).astype("int32") for b, t in SHAPES]
        return model, [{"context": c, "labels": y} for c, y in zip(contexts, labels)]

    return build


MAX_LENGTH, VOCABULARY = 6, 4


def _length_model(kind, generation):
    builder = getattr(length_models, f"{kind}_generator")

    def build():
        model = builder(vocabulary_size=VOCABULARY, max_length=MAX_LENGTH, units=UNITS)
        rng = _rng(3)
        if generation:
            generate = getattr(length_models, f"{kind}_generation_model")(model)
            batches = []
            for b, _ in SHAPES:
                spec = {x.name: tuple(x.shape[1:]) for x in keras.tree.flatten(generate.input)}
                batches.append({k: rng.uniform(0.01, 0.99, size=(b,) + s).astype("float32") for k, s in spec.items()})
                if len(batches[-1]) == 1:
                    batches[-1] = next(iter(batches[-1].values()))
            return generate, batches
        batches = []
        for b, t in SHAPES:
            labels = rng.integers(1, VOCABULARY + 1, size=(b, t)).astype("int32")
            inputs = {"labels": labels}
            if kind == "length_prior":
                inputs["lengths"] = rng.integers(1, MAX_LENGTH + 1, size=(b,)).astype("int32")
            batches.append(inputs if len(inputs) > 1 else labels)
        return model, batches

    return build


def _seq2seq(attention):
    def build():
        model = models.Seq2Seq("abcd", "abcd", embedding_dim=4, hidden_dim=UNITS, attention=attention,
                               max_source_length=6, max_target_length=6)
        rng = _rng(4)
        batches = []
        for b, t in [(1, 1), (2, 4), (4, 7)]:
            source = rng.integers(4, 8, size=(b, t)).astype("int32")
            source[:, -1] = 3  # <end>
            batches.append(source)
        return model, batches

    return build


def char_lm():
    """`LanguageModel.step` (the `step` signature of `export_language_model`): ids and a state in, logits and state out."""
    lm = models.LanguageModel(list("abcdé"), embedding_dim=3, units=UNITS, stateful=False)
    lm.build((None, None))
    ids = keras.Input((None,), dtype="int32", name="ids")
    state = keras.Input((UNITS,), name="state")
    logits, new_state = lm.step(ids, state)
    rng = _rng(7)
    batches = [{"ids": rng.integers(0, lm.vocabulary_size, size=(b, t)).astype("int32"),
                "state": rng.normal(size=(b, UNITS)).astype("float32")} for b, t in SHAPES]
    return keras.Model({"ids": ids, "state": state}, {"logits": logits, "next_state": new_state}, name="char_lm"), batches


def bahdanau_attention():
    query = keras.Input((UNITS,), name="query")
    values = keras.Input((None, FEATURES), name="values")
    mask = keras.Input((None,), dtype="bool", name="mask")
    context, weights = layers.BahdanauAttention(5)(query, values, mask=mask)
    rng = _rng(5)
    batches = []
    for b, t in SHAPES:
        m = np.ones((b, t), bool)
        m[0, t // 2 + 1:] = False
        batches.append({"query": rng.normal(size=(b, UNITS)).astype("float32"),
                        "values": rng.normal(size=(b, t, FEATURES)).astype("float32"), "mask": m})
    return keras.Model({"query": query, "values": values, "mask": mask}, [context, weights]), batches


@keras.saving.register_keras_serializable(package="rnnzoo_export_matrix")
class DecoderStep(keras.layers.Layer):
    """One `AttentionDecoderCell` step as a layer: `(y, state, annotations, mask)` -> `(logits, state)`."""

    def __init__(self, units, vocabulary_size, attention_units, **kwargs):
        super().__init__(**kwargs)
        self.units, self.vocabulary_size, self.attention_units = units, vocabulary_size, attention_units
        self.cell = cells.AttentionDecoderCell(units, vocabulary_size=vocabulary_size, attention_units=attention_units)

    def build(self, inputs_shape, state_shape, annotations_shape, source_mask_shape):
        self.cell.build(inputs_shape, annotations_shape)

    def call(self, inputs, state, annotations, source_mask):
        logits, states = self.cell(inputs, [state], self.cell.memory(annotations, source_mask))
        return logits, states[0]

    def compute_output_shape(self, inputs_shape, state_shape, annotations_shape, source_mask_shape):
        return (inputs_shape[0], self.vocabulary_size), (inputs_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "vocabulary_size": self.vocabulary_size,
                "attention_units": self.attention_units}


def attention_decoder_cell():
    y = keras.Input((3,), name="y")
    state = keras.Input((UNITS,), name="state")
    annotations = keras.Input((None, 6), name="annotations")
    mask = keras.Input((None,), dtype="bool", name="mask")
    logits, new_state = DecoderStep(UNITS, 5, 5)(y, state, annotations, mask)
    rng = _rng(6)
    batches = []
    for b, t in SHAPES:
        m = np.ones((b, t), bool)
        m[-1, t // 2 + 1:] = False
        batches.append({"y": rng.normal(size=(b, 3)).astype("float32"), "state": rng.normal(size=(b, UNITS)).astype("float32"),
                        "annotations": rng.normal(size=(b, t, 6)).astype("float32"), "mask": m})
    model = keras.Model({"y": y, "state": state, "annotations": annotations, "mask": mask}, [logits, new_state])
    return model, batches


# A child-sum tree takes any number of children K; on JAX a symbolic K makes the child gather a
# `dynamic_gather`, which the TFLite converter rejects, so K is declared (TensorFlow keeps it dynamic).
FIXED_CHILDREN = [{"token_ids": "(batch, nodes)", "children": "(batch, nodes, 2)", "schedule": "(batch, levels, width)"}]
SHARED_SOURCE = [{"query": f"(batch, {UNITS})", "values": f"(batch, source_time, {FEATURES})",
                  "mask": "(batch, source_time)"}]
SHARED_ANNOTATIONS = [{"y": "(batch, 3)", "state": f"(batch, {UNITS})", "annotations": "(batch, source_time, 6)",
                       "mask": "(batch, source_time)"}]

CASES = {
    "vanilla_rnn": Case("vanilla_rnn", vanilla_rnn),
    "vanilla_rnn_cell": Case("vanilla_rnn_cell", _recurrent(lambda: cells.VanillaRNNCell(UNITS))),
    "vanilla_tagger": Case("vanilla_tagger", vanilla_tagger),
    "recurrent_keras_gru_cell": Case("recurrent", _recurrent(lambda: keras.layers.GRUCell(UNITS)),
                                     note="layers.Recurrent over Keras's GRUCell"),
    "recurrent_keras_lstm_cell": Case("recurrent", _recurrent(lambda: keras.layers.LSTMCell(UNITS)),
                                      note="layers.Recurrent over Keras's LSTMCell"),
    "tree_layer": Case("tree_layer", _tree_layer_model("concat")),
    "tree_cell": Case("tree_cell", _tree_layer_model("sum"), note="TreeLayer(combine='sum') (child-sum TreeCell)"),
    "tree_classifier": Case("tree_classifier", _tree_classifier("concat")),
    "tree_classifier_sum": Case("tree_classifier", _tree_classifier("sum"), FIXED_CHILDREN,
                                note="combine='sum'; on JAX the number of children K is fixed at export"),
    "bidirectional": Case("bidirectional", bidirectional),
    "bidirectional_tagger": Case("bidirectional_tagger", _per_step_tagger(
        lambda: layers.Bidirectional(layers.VanillaRNN(UNITS, return_sequences=True)), "bidirectional_tagger"),
        note="as the training recipe"),
    "vanilla_regressor": Case("vanilla_regressor", vanilla_regressor, note="as the training recipe"),
    "deep_transition_tagger": Case("deep_transition_tagger", _per_step_tagger(
        lambda: layers.Recurrent(cells.DeepTransitionCell(UNITS, transition_depth=2, skip_connection=True),
                                 return_sequences=True), "deep_transition_tagger"), note="as the training recipe"),
    "deep_rnn": Case("deep_rnn", deep_rnn, note="VanillaRNNCell + Keras GRUCell, residual"),
    "deep_transition_cell": Case("deep_transition_cell", _recurrent(
        lambda: cells.DeepTransitionCell(UNITS, transition_depth=2, skip_connection=True))),
    "output_recurrence_cell": Case("output_recurrence_cell", _recurrent(
        lambda: cells.OutputRecurrenceCell(UNITS, num_classes=CLASSES))),
    "output_recurrent_rnn": Case("output_recurrent_rnn", output_recurrent_rnn, SHARED_TIME, note="teacher forcing"),
    "output_recurrent_tagger": Case("output_recurrent_tagger", _output_recurrent_tagger(False), SHARED_TIME,
                                    note="training graph (teacher forcing)"),
    "closed_loop_tagger": Case("output_recurrent_tagger", _output_recurrent_tagger(False, closed_loop=True),
                               note="closed-loop inference graph"),
    "hybrid_tagger": Case("hybrid_tagger", _output_recurrent_tagger(True), SHARED_TIME,
                          note="training graph, scheduled sampling"),
    "sequence_classifier": Case("sequence_classifier", _sequence_to_one(False)),
    "sequence_regressor": Case("sequence_regressor", _sequence_to_one(True)),
    "conditional_generator": Case("conditional_generator", _conditional_generator(False), note="training graph"),
    "conditional_generation_model": Case("conditional_generator", _conditional_generator(True),
                                         note="generation graph"),
    "eos_generator": Case("eos_generator", _length_model("eos", False), note="training graph"),
    "eos_generation_model": Case("eos_generator", _length_model("eos", True), note="generation graph"),
    "stop_unit_generator": Case("stop_unit_generator", _length_model("stop_unit", False), note="training graph"),
    "stop_unit_generation_model": Case("stop_unit_generator", _length_model("stop_unit", True),
                                       note="generation graph"),
    "length_prior_generator": Case("length_prior_generator", _length_model("length_prior", False),
                                   note="training graph"),
    "length_prior_generation_model": Case("length_prior_generator", _length_model("length_prior", True),
                                          note="generation graph"),
    "seq2seq_fixed_context": Case("seq2seq_fixed_context", _seq2seq(False), decoder="greedy",
                                  note="`greedy` token signature"),
    "seq2seq_attention": Case("seq2seq_attention", _seq2seq(True), decoder="greedy", note="`greedy` token signature"),
    "char_lm": Case("char_lm", char_lm, note="`step` signature: ids and state in, logits and next state out"),
    "bahdanau_attention": Case("bahdanau_attention", bahdanau_attention, SHARED_SOURCE),
    "attention_decoder_cell": Case("attention_decoder_cell", attention_decoder_cell, SHARED_ANNOTATIONS,
                                   note="one step, attention over a dynamic source"),
}


def _short(error):
    """The line of an exception that names the cause (converter errors are long)."""
    text = f"{type(error).__name__}: {error}"
    for marker in ("error: ", "Error: "):
        for line in text.splitlines():
            if marker in line and "Traceback" not in line:
                return line.strip()[:300]
    return text.splitlines()[0][:300] if text else type(error).__name__


def _builtins_only(path):
    from rnnzoo.export import tflite_ops

    ops = tflite_ops(path)
    custom = [op for op in ops if op.startswith("CUSTOM")]
    if custom:
        raise ValueError(f"not builtin ops only: {custom}")
    return ops


def build_case(name):
    """`(case, model, batches, expected)`: the case's model, its input batches and Keras's outputs."""
    from keras import tree

    from rnnzoo.export.seq2seq import decoder_function

    case = CASES[name]
    keras.utils.set_random_seed(0)
    model, batches = case.build()
    if case.decoder:
        function = decoder_function(model, case.decoder)
        model.generate_ids(batches[0])  # builds the weights
    else:
        function = lambda batch: model(batch, training=False)  # noqa: E731
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        expected = [tree.map_structure(lambda x: np.asarray(ops.convert_to_numpy(x)), function(b)) for b in batches]
    return case, model, batches, expected


def _parity(path, batches, expected, signature):
    from rnnzoo.export.artifacts import load_artifact
    from rnnzoo.export.parity import _errors

    run = load_artifact(path, signature)
    absolute = relative = 0.0
    for batch, want in zip(batches, expected):
        got = run(batch)
        if isinstance(want, dict):  # a signature's outputs come back ordered by name
            want = [want[k] for k in sorted(want)]
        a, r = _errors(got, want)
        absolute, relative = max(absolute, a), max(relative, r)
    return absolute, relative


def _result(fn):
    start = time.perf_counter()
    try:
        out = {"status": "ok", **(fn() or {})}
    except Exception as error:  # noqa: BLE001  (the matrix records every failure, it does not stop)
        out = {"status": "error", "error": _short(error), "traceback": traceback.format_exc()[-2000:]}
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out


def _checked(path, batches, expected, signature, extra=None):
    absolute, relative = _parity(path, batches, expected, signature)
    out = {"max_abs_error": absolute, "max_relative_error": relative, **(extra or {})}
    if not relative <= TOLERANCE:  # NaN fails
        out["status"] = "fail"
    return out


def run_case(name, out_dir, formats=FORMATS):
    """Exports case `name` into `out_dir` in each format and checks each artifact against Keras.

    Returns `(results, model, batches, expected)`; `results` maps a format to a dict with
    `status` (`"ok"`: parity within `TOLERANCE`; `"fail"`: exported, numbers differ; `"error"`:
    the export failed, `error` says why), `max_relative_error`, `max_abs_error` and `seconds`.
    TFLite and ONNX from the JAX backend are left to `convert_in_tensorflow_process` (one process
    for all cases, from the `.keras` files, as `rnnzoo.export.to_tflite(model)` and `to_onnx(model)` do).
    """
    from rnnzoo import export

    try:
        case, model, batches, expected = build_case(name)
    except Exception as error:  # noqa: BLE001
        failed = {"status": "error", "error": "building the model: " + _short(error), "seconds": 0.0}
        return {fmt: dict(failed) for fmt in formats}, None, None, None
    signature = {"greedy": "greedy", "beam": "beam_search"}.get(case.decoder, "serving_default")
    base = os.path.join(out_dir, name)
    saved_model, tflite = base + "_saved_model", base + ".tflite"
    results = {}

    def saved():
        if case.decoder:
            export.export_decoder(model, saved_model, method=case.decoder)
        else:
            export.to_saved_model(model, saved_model, polymorphic_shapes=case.polymorphic_shapes)
        return _checked(saved_model, batches, expected, signature)

    results["saved_model"] = _result(saved)
    if "tflite" in formats and keras.backend.backend() == "tensorflow":
        def lite():
            if results["saved_model"]["status"] == "error":
                raise RuntimeError("no SavedModel to convert")
            export.to_tflite(saved_model, tflite)
            ops_ = _builtins_only(tflite)
            return _checked(tflite, batches, expected, signature, {"while": "WHILE" in ops_})

        results["tflite"] = _result(lite)
    if "onnx" in formats and keras.backend.backend() == "tensorflow":
        onnx_path = base + ".onnx"

        def onnx():
            if results["saved_model"]["status"] == "error":
                raise RuntimeError("no SavedModel to convert")
            export.to_onnx(saved_model, onnx_path, signature=signature)
            return _checked(onnx_path, batches, expected, signature)

        results["onnx"] = _result(onnx)
    return results, model, batches, expected


def convert_in_tensorflow_process(jobs, out_dir, formats=("tflite", "onnx"), timeout=1800):
    """JAX backend: converts every `(name, model)` of `jobs` to TFLite and ONNX in one TensorFlow process.

    Each model goes through a `.keras` file (see `rnnzoo.export.to_tflite` and `to_onnx`), and
    one TensorFlow SavedModel per case is converted to each format, as `to_tflite(model)` and
    `to_onnx(model)` do (each exports its own).
    Returns a dict `name -> {format: [path or None, error or None, seconds]}`.
    """
    from rnnzoo.export.artifacts import run_python

    paths = {}
    for name, model in jobs:
        paths[name] = os.path.join(out_dir, name + ".keras")
        model.save(paths[name])
    code = (
        "import json, sys, time, traceback, warnings, keras\n"
        "import rnnzoo\n"
        "from rnnzoo import export\n"
        "from rnnzoo.export import matrix\n"
        "results = {}\n"
        "for name, keras_path in json.loads(sys.argv[1]).items():\n"
        "    case, results[name] = matrix.CASES[name], {}\n"
        "    with warnings.catch_warnings():\n"
        "        warnings.simplefilter('ignore', UserWarning)\n"
        "        model = keras.saving.load_model(keras_path)\n"
        "    base, start = keras_path[:-len('.keras')], time.perf_counter()\n"
        "    signature = {'greedy': 'greedy', 'beam': 'beam_search'}.get(case.decoder, 'serving_default')\n"
        "    try:  # one TensorFlow SavedModel per case, converted to each format (what to_tflite(model) does)\n"
        "        with warnings.catch_warnings():\n"
        "            warnings.simplefilter('ignore', UserWarning)\n"
        "            if case.decoder:\n"
        "                saved = export.export_decoder(model, base + '_tf_saved_model', method=case.decoder)\n"
        "            else:\n"
        "                saved = export.to_saved_model(model, base + '_tf_saved_model')\n"
        "        saved_error = None\n"
        "    except Exception as error:\n"
        "        saved, saved_error = None, 'the TensorFlow SavedModel: ' + matrix._short(error)\n"
        "    shared = time.perf_counter() - start\n"
        "    for fmt in json.loads(sys.argv[2]):\n"
        "        start = time.perf_counter()\n"
        "        path = base + '.' + fmt\n"
        "        try:\n"
        "            if saved is None:\n"
        "                raise RuntimeError(saved_error)\n"
        "            with warnings.catch_warnings():\n"
        "                warnings.simplefilter('ignore', UserWarning)\n"
        "                if fmt == 'tflite':\n"
        "                    export.to_tflite(saved, path)\n"
        "                else:\n"
        "                    export.to_onnx(saved, path, signature=signature)\n"
        "            results[name][fmt] = [path, None, time.perf_counter() - start + shared]\n"
        "        except Exception as error:\n"
        "            results[name][fmt] = [None, matrix._short(error), time.perf_counter() - start + shared]\n"
        "print('RESULTS ' + json.dumps(results))\n"
    )
    done = run_python(code, [json.dumps(paths), json.dumps(list(formats))], timeout=timeout, backend="tensorflow")
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"The TensorFlow process converting to {' and '.join(formats)} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULTS "):])


def run_matrix(names=None, out_dir=None, formats=FORMATS):
    """Runs `run_case` for every case (or `names`) on the current backend; returns `{case: {format: result}}`."""
    import tempfile

    names = list(CASES) if names is None else list(names)
    results, jobs, kept = {}, [], {}
    converted_formats = [f for f in ("tflite", "onnx") if f in formats]
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = out_dir or tmp
        for name in names:
            results[name], model, batches, expected = run_case(name, out_dir, formats)
            if converted_formats and keras.backend.backend() != "tensorflow" and model is not None:
                jobs.append((name, model))
                kept[name] = (batches, expected)
        if jobs:
            start = time.perf_counter()
            converted = convert_in_tensorflow_process(jobs, out_dir, converted_formats)
            for name, by_format in converted.items():
                batches, expected = kept[name]
                case = CASES[name]
                signature = {"greedy": "greedy", "beam": "beam_search"}.get(case.decoder, "serving_default")
                for fmt, (path, error, seconds) in by_format.items():
                    if path is None:
                        results[name][fmt] = {"status": "error", "error": error, "seconds": round(seconds, 2)}
                        continue

                    def check(path=path, fmt=fmt):
                        extra = {"while": "WHILE" in _builtins_only(path)} if fmt == "tflite" else None
                        return _checked(path, batches, expected, signature, extra)

                    result = _result(check)
                    result["seconds"] = round(result["seconds"] + seconds, 2)
                    results[name][fmt] = result
            results["_tensorflow_process_seconds"] = round(time.perf_counter() - start, 2)
    return results


BACKENDS = ("tensorflow", "jax")
FORMAT_TITLES = {"saved_model": "SavedModel", "tflite": "TFLite", "onnx": "ONNX"}
BACKEND_TITLES = {"tensorflow": "TF", "jax": "JAX"}
README_START, README_END = "<!-- export-matrix:start -->", "<!-- export-matrix:end -->"


def results_path(backend, root=None):
    root = root or os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.join(root, "docs", "export_matrix", f"{backend}.json")


def load_results(backend, root=None):
    with open(results_path(backend, root)) as f:
        return json.load(f)


def format_table(results_by_backend):
    """The README's Markdown table from `{backend: {case: {format: result}}}` (the committed JSON files)."""
    columns = [(b, f) for b in BACKENDS for f in FORMATS]
    header = "| case | zoo entry | " + " | ".join(f"{FORMAT_TITLES[f]} {BACKEND_TITLES[b]}" for b, f in columns) + " | notes |"
    lines = [header, "|" + "---|" * (len(columns) + 3)]
    for name, case in CASES.items():
        cells = [_cell(results_by_backend.get(b, {}).get(name, {}).get(f)) for b, f in columns]
        entry = f"`{case.entry}`" if case.entry else "—"
        lines.append(f"| `{name}` | {entry} | " + " | ".join(cells) + f" | {case.note} |")
    return "\n".join(lines)


def readme_with_table(readme, table):
    """`readme` with the text between the export-matrix markers replaced by `table`."""
    if README_START not in readme or README_END not in readme:
        raise ValueError(f"The README has no {README_START} ... {README_END} block for the export matrix.")
    head, rest = readme.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{table}\n{README_END}{tail}"


def main(argv=None):
    import argparse

    parser = argparse.ArgumentParser(description="Export every zoo case in every format; write the results as JSON.")
    parser.add_argument("--out", default=None, help="JSON file (default docs/export_matrix/<backend>.json)")
    parser.add_argument("--readme", action="store_true",
                        help="only rewrite README.md's table from docs/export_matrix/{tensorflow,jax}.json")
    parser.add_argument("names", nargs="*", help="cases (default: all)")
    args = parser.parse_args(argv)
    if args.readme:
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        readme_path = os.path.join(root, "README.md")
        with open(readme_path) as f:
            readme = f.read()
        table = format_table({b: load_results(b, root) for b in BACKENDS})
        with open(readme_path, "w") as f:
            f.write(readme_with_table(readme, table))
        print(f"wrote the export matrix into {readme_path}")
        return
    start = time.perf_counter()
    results = run_matrix(args.names or None)
    results["_total_seconds"] = round(time.perf_counter() - start, 1)
    out = args.out or results_path(keras.backend.backend())
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(strip(results), f, indent=1, sort_keys=True)
    for name, row in results.items():
        if not name.startswith("_"):
            print(f"{name:<32}", "  ".join(f"{fmt}={_cell(row.get(fmt))} ({row[fmt]['seconds']:.1f} s)"
                                           for fmt in FORMATS if fmt in row))
    print(f"total {results['_total_seconds']} s (TensorFlow process {results.get('_tensorflow_process_seconds', '-')} s) -> {out}")


def strip(results):
    """The results without tracebacks and timings (what the committed JSON holds)."""
    return {
        name: {fmt: {k: v for k, v in r.items() if k not in ("traceback", "seconds")} for fmt, r in row.items()}
        for name, row in results.items() if not name.startswith("_")
    }


def _cell(result):
    """`✓ 2e-07` (parity within TOLERANCE, the largest relative error), `✗ 3e-02` or `error`."""
    if result is None:
        return "—"
    if result["status"] == "error":
        return "error"
    mark = "✓" if result["status"] == "ok" else "✗"
    error = result.get("max_relative_error")
    return f"{mark} {error:.0e}" if error is not None else f"{mark} nan"


if __name__ == "__main__":
    main()
