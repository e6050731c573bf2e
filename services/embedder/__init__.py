"""Embedder service: decodes video with PyAV and embeds frames with the model."""
