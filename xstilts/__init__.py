"""xstilts: English intermediate-task training for zero-shot cross-lingual transfer."""

__version__ = "0.1.0"


def _quiet_libraries() -> None:
    """datasets' and transformers' per-call progress bars drown our own progress output."""
    try:
        import datasets

        datasets.disable_progress_bars()
    except ImportError:
        pass
    try:
        from transformers.utils import logging

        logging.disable_progress_bar()
        logging.set_verbosity_error()
    except ImportError:
        pass
