"""What every browser test shares: the window, the patience, and logging in to the Prefect UI."""

from __future__ import annotations

from playwright.sync_api import Page, expect

VIEWPORT = {"width": 1400, "height": 1000}
TIMEOUT_MS = 30_000  # default for every Playwright action, wait and `expect` in these tests


def log_in(page: Page, ui_url: str, login: str) -> None:
    """Log in to the Prefect UI as a person would: its login page asks for the server's `user:password`."""
    page.goto(ui_url)
    page.get_by_placeholder("admin:pass").fill(login)
    page.get_by_role("button", name="Login").click()
