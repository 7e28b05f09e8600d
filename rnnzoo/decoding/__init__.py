"""Decoding inside the graph: greedy and beam search for any decoder step function (10.4)."""

from rnnzoo.decoding.beam_search import beam_search, tile_beams
from rnnzoo.decoding.greedy import greedy_search

__all__ = ["beam_search", "greedy_search", "tile_beams"]
