"""Corpora: the synthesized embedded default, real corpora from their usual layouts, preparation, splits."""
