"""Measured accuracy: verification metrics, the LFW protocol, dataset embeddings, open-set identification."""
