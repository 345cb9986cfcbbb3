"""firewatch's tests, grouped by layer; shared helpers, harnesses and fakes in ``tests.support``."""
