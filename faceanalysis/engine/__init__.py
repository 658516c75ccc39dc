"""Face analysis engine: pure Python, offline models, no Django."""
