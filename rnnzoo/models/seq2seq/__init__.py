"""Sequence-to-sequence models (section 10.4): fixed context and Bahdanau attention."""

from rnnzoo.models.seq2seq.seq2seq_model import MaskedSequenceCrossentropy, Seq2Seq, exact_match
from rnnzoo.models.seq2seq.seq2seq_tokenizer import Tokenizer, build_vocabulary

__all__ = ["MaskedSequenceCrossentropy", "Seq2Seq", "Tokenizer", "build_vocabulary", "exact_match"]
