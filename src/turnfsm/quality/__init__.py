"""Turn-taking quality: scoring end-of-turn decisions against labelled sessions."""

from .score import Score, Truth, read_truth, score_outputs

__all__ = ["Score", "Truth", "read_truth", "score_outputs"]
