"""firewatch's application: settings, paths, logging, the command line, the daemon and the
wiring of vision/, storage/ and bot/ into one process.

Kept free of imports so that ``training/`` and ``bench/`` can use ``firewatch.paths`` without
loading the application.
"""

__version__ = "0.1.0"
