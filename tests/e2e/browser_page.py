"""Bounded-wait page helpers shared by the browser tests (import only after the Chromium skip check)."""
from __future__ import annotations

import re

from tests.e2e.browser import WAIT
from selenium.common.exceptions import (ElementClickInterceptedException, StaleElementReferenceException,
                                        WebDriverException)
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait


class Page:
    """Small bounded-wait helpers around the driver."""

    def __init__(self, driver, base: str):
        self.d, self.base = driver, base
        self.wait = WebDriverWait(driver, WAIT)

    def open(self, path: str) -> None:
        self.d.get(self.base + path)

    def el(self, css: str):
        return self.wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, css)), f"no element {css!r}")

    def fill(self, name: str, value: str) -> None:
        box = self.el(f"[name='{name}']")
        box.clear()
        box.send_keys(value)

    def choose(self, name: str, value: str, scope: str = "") -> None:
        Select(self.el(f"{scope} select[name='{name}']".strip())).select_by_value(value)

    def tick(self, name: str, value: str) -> None:
        box = self.el(f"input[name='{name}'][value='{value}']")
        if not box.is_selected():
            self.click(box)

    def click(self, element) -> None:
        self.wait.until(EC.element_to_be_clickable(element))
        try:
            element.click()
        except ElementClickInterceptedException:
            self.d.execute_script("arguments[0].click();", element)

    def submit_with(self, css: str, url_pattern: str) -> None:
        """Click a submit button and wait until the browser has arrived on a URL matching ``url_pattern``."""
        old = self.el("html")
        self.click(self.el(css))
        self.wait.until(left_page(old), f"clicking {css!r} did not load a new page")
        self.wait.until(lambda d: re.search(url_pattern, d.current_url),
                        f"after {css!r} expected a URL matching {url_pattern!r}")


def left_page(element):
    """Like EC.staleness_of, but also counts ChromeDriver's "Node with given id does not belong to the
    document" (asked while the old document is being torn down) as the page having moved on."""
    def check(_driver) -> bool:
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False
    return check
