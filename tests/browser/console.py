"""A person at the console: Debian's chromium, headless, driven by selenium through chromedriver.

`Console` wraps the driver with the few moves the browser tests repeat (open a page, sign in, fill and
submit a form, accept a confirmation, save a screenshot). Screenshots go to SCREENSHOT_DIR (default
artifacts/screenshots/ at the repository root), one PNG per page and width, kept after the run.
"""
from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "artifacts" / "screenshots"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
WIDE, NARROW = (1280, 900), (390, 844)


def start_chromium() -> webdriver.Chrome:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]
    if missing:
        raise RuntimeError(f"browser tests need Debian's chromium and chromium-driver ({', '.join(missing)} not found): "
                           "apt-get install -y chromium chromium-driver (scripts/services.sh does it)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={WIDE[0]},{WIDE[1]}", "--lang=en-US"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    return driver


class Console:
    def __init__(self, driver: webdriver.Chrome, base_url: str, token: str):
        self.driver, self.base_url, self.token = driver, base_url, token

    # --- moving around ---------------------------------------------------------------------------

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def sign_in(self, token: str | None = None) -> None:
        self.open("/admin/sign-in")
        self.fill({"token": self.token if token is None else token})
        self.find("form button[type=submit]").click()

    @property
    def path(self) -> str:
        return self.driver.current_url.removeprefix(self.base_url)

    # --- reading ---------------------------------------------------------------------------------

    def find(self, css: str, timeout: float = 10):
        return WebDriverWait(self.driver, timeout).until(EC.presence_of_element_located((By.CSS_SELECTOR, css)))

    def find_all(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str = "main") -> str:
        return self.find(css).text

    def wait_for_text(self, text: str, css: str = "main", timeout: float = 20) -> None:
        WebDriverWait(self.driver, timeout).until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))

    def wait_until(self, predicate, timeout: float = 20, reload: bool = False):
        """Wait until predicate(self) is true, reloading the page between tries when asked."""
        def check(_driver):
            if reload:
                self.driver.refresh()
            return predicate(self)
        return WebDriverWait(self.driver, timeout, poll_frequency=0.5).until(check)

    # --- acting ----------------------------------------------------------------------------------

    def fill(self, fields: dict[str, str], within: str = "") -> None:
        """Type into inputs (or choose in selects) found by name, within a CSS scope."""
        for name, value in fields.items():
            element = self.find(f"{within} [name='{name}']".strip())
            if element.tag_name == "select":
                from selenium.webdriver.support.ui import Select

                Select(element).select_by_value(value)
            elif element.get_attribute("type") in ("checkbox", "radio"):
                if element.is_selected() != bool(value):
                    element.click()
            else:
                element.clear()
                element.send_keys(value)

    def click(self, css: str) -> None:
        element = self.find(css)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
        element.click()

    def accept_confirmation(self, timeout: float = 5) -> str:
        """Accept the page's confirm() dialog; returns what it asked."""
        alert = WebDriverWait(self.driver, timeout).until(EC.alert_is_present())
        asked = alert.text
        alert.accept()
        return asked

    def screenshot(self, name: str, *, narrow: bool = True) -> list[Path]:
        """Save the whole page at 1280 px (and at 390 px when `narrow`): NAME-1280.png, NAME-390.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        saved = []
        for width, height in (WIDE, NARROW) if narrow else (WIDE,):
            self.driver.set_window_size(width, height)
            inner, full = self.driver.execute_script(
                "return [window.innerWidth, document.documentElement.scrollHeight]")
            # Headless chromium keeps a window within its screen, so a taller window still cut long pages:
            # capture beyond the viewport instead (the page as laid out at this width).
            shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
                "format": "png", "captureBeyondViewport": True,
                "clip": {"x": 0, "y": 0, "width": inner, "height": min(max(full, height), 6000), "scale": 1}})
            path = SCREENSHOTS / f"{name}-{width}.png"
            path.write_bytes(base64.b64decode(shot["data"]))
            saved.append(path)
        self.driver.set_window_size(*WIDE)
        return saved

    def no_horizontal_scroll(self) -> bool:
        return self.driver.execute_script(
            "return document.documentElement.scrollWidth <= document.documentElement.clientWidth + 1")
