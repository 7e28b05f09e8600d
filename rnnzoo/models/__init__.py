"""Ready `keras.Model`s of the zoo."""

from rnnzoo.models.vanilla_tagger import vanilla_tagger

__all__ = ["vanilla_tagger"]
