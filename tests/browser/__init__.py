"""Browser tests: a package, so their Playwright (and its event loop) closes before the next directory runs."""
