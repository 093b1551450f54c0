"""Training dynamics: the :class:`~selfprune.dynamics.recorder.Recorder`, scores from it, and
thin framework callbacks (Lightning, Hugging Face)."""
