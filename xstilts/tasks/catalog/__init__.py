"""Built-in tasks. Importing this package registers them all."""

from . import demo, intermediate, xtreme, xtreme_r  # noqa: F401
