"""The admin in a real browser: headless Chromium driven by Playwright (see conftest.py)."""
