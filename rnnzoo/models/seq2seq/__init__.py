"""Sequence-to-sequence models (section 10.4): fixed context and Bahdanau attention."""

from rnnzoo.models.seq2seq.seq2seq_model import MaskedSequenceCrossentropy, Seq2Seq, exact_match
from rnnzoo.models.seq2seq.seq2seq_tokenizer import CharacterVocabulary

__all__ = ["CharacterVocabulary", "MaskedSequenceCrossentropy", "Seq2Seq", "exact_match"]
