"""Ready `keras.Model`s of the zoo."""

from rnnzoo.models.vanilla_tagger import vanilla_tagger

__all__ = ["vanilla_tagger"]

from rnnzoo.models.tree_classifier import (  # noqa: E402
    MaskedSparseCategoricalAccuracy,
    TreeClassifier,
    compile_tree_classifier,
    predict_trees,
    tree_classifier,
)

__all__ += ["MaskedSparseCategoricalAccuracy", "TreeClassifier", "compile_tree_classifier", "predict_trees",
            "tree_classifier"]

from rnnzoo.models.sequence_classifier import sequence_classifier, sequence_regressor  # noqa: E402
from rnnzoo.models.output_recurrent_tagger import closed_loop_tagger, output_recurrent_tagger  # noqa: E402
from rnnzoo.models.conditional_generator import (  # noqa: E402
    ContextOverTime,
    GreedyTokens,
    conditional_generation_model,
    conditional_generator,
)

__all__ += [
    "sequence_classifier", "sequence_regressor", "output_recurrent_tagger", "closed_loop_tagger",
    "ContextOverTime", "GreedyTokens", "conditional_generator", "conditional_generation_model",
]

from rnnzoo.models import length_models  # noqa: E402

__all__ += ["length_models"]

from rnnzoo.models.seq2seq import MaskedSequenceCrossentropy, Seq2Seq  # noqa: E402

__all__ += ["MaskedSequenceCrossentropy", "Seq2Seq"]

from rnnzoo.models.language_model import BitsPerToken, LanguageModel, Perplexity  # noqa: E402

__all__ += ["BitsPerToken", "LanguageModel", "Perplexity"]

from rnnzoo.models.tree_text import (  # noqa: E402
    BracketedTree,
    SentenceTree,
    TextTreeClassifier,
    TreeLabels,
    sentence_tree_inputs,
    tree_classifier_for_text,
)

__all__ += ["BracketedTree", "SentenceTree", "TextTreeClassifier", "TreeLabels", "sentence_tree_inputs", "tree_classifier_for_text"]
