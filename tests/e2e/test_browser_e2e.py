"""End to end in headless Chromium: register → post a need in Chinese → submit → a coordinator publishes it →
the public browse page lists it under the right facets.

Runs against a real HTTP server (``tests/e2e/browser.py``) with its own temporary SQLite database and CSRF
enabled, so the real forms are exercised. Elements are located by id / name (the UI defaults to zh-CN).
"""
from __future__ import annotations

import re
import sys
import time
import warnings

import pytest

from tests.e2e.browser import browser_missing_reason, make_driver, screenshot, start_server

_MISSING = browser_missing_reason()
if _MISSING:
    print("\n" + "!" * 100 + "\n" + _MISSING + "\n" + "!" * 100, file=sys.stderr)
    warnings.warn(_MISSING, stacklevel=1)
    pytest.skip(_MISSING, allow_module_level=True)

from tests.e2e.browser_page import Page as BasePage, left_page  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402

pytestmark = pytest.mark.browser

PASSWORD = "Correct-Horse-Battery-9"
COORDINATOR_EMAIL = "coordinator@e2e.test"
ENTERPRISE_EMAIL = "zhang.wei@dongfang-e2e.cn"

OUR_INDUSTRY, OUR_CITY = "smart_manufacturing", "deyang"
OTHER_INDUSTRY = "biomedicine"
NEED_TITLE = "大型铸件智能视觉缺陷检测系统"
OTHER_TITLE = "生物药品冷链温度追溯"


def _seed(app) -> None:
    """A coordinator account, and one published need of another enterprise in a different industry and city
    (so the browse page has a second industry facet to click)."""
    from matchmaker.accounts.models import Membership, Organization, User
    from matchmaker.core.enums import Role
    from matchmaker.extensions import db
    from matchmaker.listings import operations as ops
    from matchmaker.listings.models import Need

    with app.test_request_context():
        coordinator = User(email=COORDINATOR_EMAIL, name="李协调")
        coordinator.set_password(PASSWORD)
        coordinator.add_role(Role.COORDINATOR)
        org = Organization(name="成都康瑞生物医药有限公司", kind="enterprise", hub_city="chengdu", region="高新区")
        owner = User(email="owner@kangrui-e2e.cn", name="陈经理")
        owner.set_password(PASSWORD)
        owner.add_role(Role.ENTERPRISE)
        owner.memberships.append(Membership(organization=org, is_manager=True))
        db.session.add_all([coordinator, org, owner])
        db.session.flush()
        other = ops.create_listing(Need, owner, {
            "title": OTHER_TITLE, "industry": OTHER_INDUSTRY, "background": "疫苗运输需全程温控。",
            "problems": "现有温度记录仪数据无法实时上传。", "targets": "全程温度记录，断链告警延迟≤1分钟。",
            "hub_city": "chengdu", "region": "高新区", "coop_modes": ["service"], "visibility": "public",
            "contact_name": "陈经理", "contact_phone": "028-85550000", "contact_email": "chen@kangrui-e2e.cn",
        }, organization=org)
        ops.submit_listing(other, owner)
        ops.publish_listing(other, coordinator)
        db.session.commit()
        db.session.remove()


@pytest.fixture(scope="module")
def server():
    live = start_server()
    try:
        _seed(live.app)
        yield live
    finally:
        live.stop()


@pytest.fixture
def driver():
    drv = make_driver()
    try:
        yield drv
    finally:
        drv.quit()


class Page(BasePage):
    """The shared helpers plus what the browse pages need."""

    def path(self) -> str:
        return self.d.current_url[len(self.base):]

    def cards(self) -> set[str]:
        return {c.get_attribute("data-listing-id") for c in self.d.find_elements(By.CSS_SELECTOR, ".card-listing")}

    def click_facet(self, facet: str, value: str) -> None:
        link = self.el(f"#facet-{facet} a[href*='{facet}={value}']")
        old = self.el("html")
        self.click(link)
        self.wait.until(left_page(old), f"facet {facet}={value} did not load a new page")
        self.wait.until(EC.url_contains(f"{facet}={value}"))
        self.el("#result-count")

    def errors(self) -> str:
        return " | ".join(e.text for e in self.d.find_elements(By.CSS_SELECTOR, ".invalid-feedback, .alert-danger"))


def test_enterprise_need_goes_from_registration_to_public_browse(server, driver):
    """Can an enterprise user register, post and submit a Chinese need through the real forms, a coordinator
    publish it from the moderation queue, and visitors then find it on /needs under its industry and hub-city
    facets (and not under another industry)?"""
    page = Page(driver, server.url)
    started = time.monotonic()
    try:
        _scenario(page)
    except BaseException as exc:
        path = screenshot(driver, "failure")
        print(f"\nE2E failure screenshot: {path} (page source next to it); URL was {driver.current_url}")
        exc.add_note(f"screenshot: {path}; URL: {driver.current_url}; form errors: {page.errors()!r}")
        raise
    print(f"\nE2E scenario took {time.monotonic() - started:.1f}s")


def _scenario(page: Page) -> None:
    # 1. an enterprise member registers (new enterprise: Chinese name, hub city)
    page.open("/register")
    page.fill("name", "张伟")
    page.fill("email", ENTERPRISE_EMAIL)
    page.fill("password", PASSWORD)
    page.fill("confirm", PASSWORD)
    page.click(page.el("input[name='account_type'][value='enterprise']"))
    page.fill("org_name", "德阳东方智能装备有限公司")
    page.choose("hub_city", OUR_CITY)
    page.fill("region", "旌阳区")
    page.submit_with("#register-form [name='submit']", r"/my$")

    # 2. posts a need in Chinese through the need form, saves it as a draft …
    page.open("/needs/new")
    page.fill("title", NEED_TITLE)
    page.choose("industry", OUR_INDUSTRY)
    page.fill("background", "公司生产大型风电铸件，目前依靠人工目检，漏检率高。")
    page.fill("problems", "铸件表面气孔、裂纹等缺陷尺寸小（≥0.5mm），表面反光强，传统视觉算法误报多。")
    page.fill("targets", "缺陷检出率≥98%，误报率≤2%，单件检测时间≤3分钟。")
    page.tick("coop_modes", "joint_dev")
    page.tick("coop_modes", "commissioned")
    page.choose("hub_city", OUR_CITY)
    page.fill("region", "旌阳区")
    page.fill("budget_min", "50")
    page.fill("budget_max", "120")
    page.choose("visibility", "public")
    page.fill("contact_name", "张工")
    page.fill("contact_phone", "0838-2345678")
    page.fill("contact_email", "zhang.gong@dongfang-e2e.cn")
    page.submit_with("#listing-form [name='save_draft']", r"/needs/\d+$")
    need_id = re.search(r"/needs/(\d+)$", page.d.current_url).group(1)
    assert page.el("#listing-title").text == NEED_TITLE

    # … and submits it for review from its page
    page.submit_with(f"form[action$='/needs/{need_id}/submit'] button[type='submit']", rf"/needs/{need_id}$")
    assert not page.d.find_elements(By.CSS_SELECTOR, f"form[action$='/needs/{need_id}/submit']"), \
        "the need still offers 'submit for review' after being submitted"

    # 3. logs out
    page.submit_with("#logout", r"/$")
    assert page.d.find_elements(By.CSS_SELECTOR, "a[href^='/login']"), "still signed in after logging out"

    # not public yet
    page.open("/needs")
    page.el("#result-count")
    assert need_id not in page.cards(), "a submitted, unpublished need is listed publicly"

    # 4. a coordinator logs in and publishes it from the moderation queue
    page.open("/login")
    page.fill("email", COORDINATOR_EMAIL)
    page.fill("password", PASSWORD)
    page.submit_with("form [name='submit']", r"/my$")
    page.open("/review/")
    row_link = page.el(f"#queue tr[data-listing-id='{need_id}'][data-kind='needs'] a")
    old = page.el("html")
    page.click(row_link)
    page.wait.until(left_page(old))
    page.wait.until(EC.url_contains(f"/review/needs/{need_id}"))
    page.submit_with("#publish-form [name='publish']", r"/review/?$")
    assert not page.d.find_elements(By.CSS_SELECTOR, f"#queue tr[data-listing-id='{need_id}']"), \
        "the published need is still in the moderation queue"
    page.submit_with("#logout", r"/$")

    # 5. an anonymous visitor browses /needs and finds it
    page.open("/needs")
    page.el(f".card-listing[data-listing-id='{need_id}']")
    everything = page.cards()
    assert need_id in everything and len(everything) >= 2, everything

    # under its industry facet …
    page.click_facet("industry", OUR_INDUSTRY)
    assert need_id in page.cards(), f"not listed under industry={OUR_INDUSTRY}"
    assert OTHER_TITLE not in page.d.page_source, "the other industry's need is listed under our industry"
    # … and, with it, under its hub-city facet
    page.click_facet("hub_city", OUR_CITY)
    assert need_id in page.cards(), f"not listed under industry={OUR_INDUSTRY} & hub_city={OUR_CITY}"
    assert f"hub_city={OUR_CITY}" in page.d.current_url and f"industry={OUR_INDUSTRY}" in page.d.current_url

    # a different industry facet does not list it
    page.open("/needs")
    page.click_facet("industry", OTHER_INDUSTRY)
    assert need_id not in page.cards(), f"listed under industry={OTHER_INDUSTRY}"
    assert OTHER_TITLE in page.d.page_source, "the other industry facet does not show its own need"

    # the detail page is public, without the private contact
    page.open(f"/needs/{need_id}")
    assert page.el("#listing-title").text == NEED_TITLE
    assert "0838-2345678" not in page.d.page_source, "private contact phone shown to an anonymous visitor"
