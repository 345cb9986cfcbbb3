"""firewatch's application: configuration, command line, Telegram bot and the daemon wiring."""

__version__ = "0.1.0"
