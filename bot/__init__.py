"""firewatch's Telegram side: handlers, rendering, the outbox sender, jobs and access guards.

Imports vision/ and storage/, never the application (``firewatch``) that wires it.
"""
