"""The three datapool services: scheduler, embedder, selector."""
