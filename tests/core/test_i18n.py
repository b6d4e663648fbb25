"""Translation catalogue: every UI string has a Simplified Chinese translation, the compiled catalogue
matches its source, and the interface really switches between Chinese (default) and English.

Refresh the catalogue with ``scripts/i18n.sh all`` (extract → update → compile), then fill the empty
``msgstr`` entries in ``matchmaker/translations/zh/LC_MESSAGES/messages.po`` and compile again.

The catalogue directory is ``zh`` rather than ``zh_CN``: Babel parses the selector's ``"zh_CN"`` as
``zh_Hans_CN``, for which gettext only looks in ``zh_Hans_CN/`` and ``zh/``.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "matchmaker" / "translations"
PO = TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")
REFRESH = "run scripts/i18n.sh update, translate the new entries in messages.po, then scripts/i18n.sh compile"

# The same keywords as scripts/i18n.sh (pybabel extract -k _l -k lazy_gettext -k lazy_ngettext:1,2).
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
SKIP_DIRS = {"tests", "seeds", "node_modules", "instance", "embeddings", "build", "dist", "__pycache__"}
PLACEHOLDER = re.compile(r"%(?:\((\w+)\))?[-#0 +]*\d*(?:\.\d+)?([sdifrxXeEgGc%])")


def _directory_filter(dirpath: str) -> bool:
    name = Path(dirpath).name
    return not (name.startswith(".") or name in SKIP_DIRS)  # as --ignore-dirs in scripts/i18n.sh


def _extracted() -> dict[str, list[str]]:
    """msgid → source locations, extracted from the working tree exactly as babel.cfg says."""
    with open(ROOT / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS, directory_filter=_directory_filter):
        msgid = message[0] if isinstance(message, (tuple, list)) else message
        if msgid:
            found.setdefault(msgid, []).append(f"{filename}:{lineno}")
    return found


def _catalog():
    with open(PO, "rb") as fh:
        return read_po(fh, locale="zh")


def _placeholders(text: str) -> Counter:
    return Counter(m.group(0) if not m.group(1) else f"%({m.group(1)}){m.group(2)}"
                   for m in PLACEHOLDER.finditer(text) if m.group(2) != "%")


@pytest.mark.nodb
def test_every_source_string_has_a_chinese_translation():
    """Does every message extracted from the current source (Python under matchmaker/, templates/) have a
    non-empty, non-fuzzy zh translation in messages.po?"""
    extracted = _extracted()
    assert len(extracted) > 300, f"extraction found only {len(extracted)} messages; is babel.cfg right?"
    catalog = _catalog()
    missing = []
    for msgid, where in sorted(extracted.items()):
        message = catalog.get(msgid)
        strings = () if message is None else (
            message.string if isinstance(message.string, tuple) else (message.string,))
        if message is None or not strings or not all(s and s.strip() for s in strings) or message.fuzzy:
            missing.append(f"{msgid!r} ({where[0]})")
    assert not missing, (f"{len(missing)} message(s) without a Chinese translation — {REFRESH}:\n  "
                         + "\n  ".join(missing))


@pytest.mark.nodb
def test_placeholders_survive_translation():
    """Does every translation keep exactly the placeholders (%(name)s, %(num)d, …) of its msgid?"""
    catalog = _catalog()
    wrong = []
    for message in catalog:
        if not message.id or not message.string:
            continue
        if isinstance(message.id, tuple):
            # Chinese has one plural form; it must carry the plural msgid's placeholders.
            expected = _placeholders(message.id[1])
            translations = [s for s in message.string if s]
        else:
            expected = _placeholders(message.id)
            translations = [message.string]
        for text in translations:
            if _placeholders(text) != expected:
                wrong.append(f"{message.id!r} → {text!r}")
    # Babel's own python-format checker as well (catches e.g. mixing named and positional).
    for message, errors in catalog.check():
        wrong.extend(f"{message.id!r}: {error}" for error in errors)
    assert not wrong, "placeholders differ between msgid and translation:\n  " + "\n  ".join(wrong)


@pytest.mark.nodb
def test_compiled_catalogue_is_up_to_date():
    """Does messages.mo hold exactly the translations in messages.po (i.e. was it compiled after the last
    edit)?"""
    assert MO.exists(), f"{MO} is missing — run scripts/i18n.sh compile"
    catalog = _catalog()
    with open(MO, "rb") as fh:
        compiled = read_mo(fh)

    def table(cat, skip_fuzzy):
        rows = {}
        for m in cat:
            msgid = tuple(m.id) if isinstance(m.id, (tuple, list)) else m.id
            string = tuple(m.string) if isinstance(m.string, (tuple, list)) else (m.string,)
            if msgid and any(string) and not (skip_fuzzy and m.fuzzy):
                rows[msgid] = string
        return rows

    expected, actual = table(catalog, True), table(compiled, False)
    stale = sorted(str(k) for k in expected.keys() ^ actual.keys())
    stale += sorted(str(k) for k in expected.keys() & actual.keys() if expected[k] != actual[k])
    assert not stale, (f"messages.mo differs from messages.po in {len(stale)} entr(y/ies) — run "
                       f"scripts/i18n.sh compile:\n  " + "\n  ".join(stale[:20]))


def test_catalogue_is_where_flask_babel_looks(app):
    """Does Flask-Babel load the zh catalogue for the default locale (translation directory and locale
    directory name agree)?"""
    from flask_babel import get_locale, gettext, ngettext

    # A fresh app context per request: the test already holds one, and Flask-Babel caches the locale on it.
    with app.app_context(), app.test_request_context("/"):
        assert get_locale().language == "zh"
        assert gettext("Technology needs") == "技术需求"
        assert ngettext("%(num)d result", "%(num)d results", 1) == "1 条结果"
        assert ngettext("%(num)d result", "%(num)d results", 7) == "7 条结果"
    with app.app_context(), app.test_request_context("/?lang=en"):
        assert gettext("Technology needs") == "Technology needs"
        assert ngettext("%(num)d result", "%(num)d results", 7) == "7 results"


@pytest.mark.parametrize("path", ["/", "/needs"])
def test_default_locale_is_chinese_and_lang_en_is_english(client, path):
    """Do / and /needs show Chinese navigation by default, and English with ?lang=en or session lang=en?"""
    zh = client.get(path)
    assert zh.status_code == 200
    page = zh.get_data(as_text=True)
    assert "技术需求" in page and "科技成果与能力" in page
    assert ">Technology needs<" not in page
    assert '<html lang="zh-CN"' in page

    en = client.get(f"{path}?lang=en").get_data(as_text=True)
    assert ">Technology needs<" in en and '<html lang="en"' in en
    assert ">技术需求<" not in en

    with client.session_transaction() as session:
        session["lang"] = "en"
    en_session = client.get(path).get_data(as_text=True)
    assert ">Technology needs<" in en_session and ">技术需求<" not in en_session


def test_language_switch_changes_the_interface(client):
    """Does POST /lang/en make the next GET / English, and POST /lang/zh_CN switch it back to Chinese?"""
    assert ">技术需求<" in client.get("/").get_data(as_text=True)

    response = client.post("/lang/en", data={"next": "/"})
    assert response.status_code in (302, 303)
    page = client.get("/").get_data(as_text=True)
    assert ">Technology needs<" in page and ">技术需求<" not in page

    client.post("/lang/zh_CN", data={"next": "/"})
    page = client.get("/").get_data(as_text=True)
    assert ">技术需求<" in page and ">Technology needs<" not in page


def test_the_login_prompt_is_in_the_visitors_language(client):
    """Does a visitor sent to the login page by a members-only link read the prompt in Chinese (the default)
    and in English when they chose English?"""
    zh = client.get("/needs/new", follow_redirects=True).get_data(as_text=True)
    assert "请先登录后再访问此页面。" in zh and "Please log in to access this page." not in zh
    en = client.get("/needs/new?lang=en", follow_redirects=True).get_data(as_text=True)
    assert "Please log in to access this page." in en


def test_the_name_is_said_once_on_chinese_pages(client, world):
    """On Chinese pages, where the name and the tagline are the same words (科创对接), do the brand and the
    title say them once — and the challenge heading 揭榜挂帅 once — while English pages keep both?"""
    zh = client.get("/challenges?lang=zh").get_data(as_text=True)
    brand = re.search(r'navbar-brand[^>]*>(.*?)</a>', zh, re.S).group(1)
    assert brand.count("科创对接") == 1
    assert re.search(r"<title>(.*?)</title>", zh, re.S).group(1).count("科创对接") == 1
    assert re.search(r"<h1[^>]*>(.*?)</h1>", zh, re.S).group(1).count("揭榜挂帅") == 1
    en = client.get("/challenges?lang=en").get_data(as_text=True)
    assert "Matchmaker" in re.search(r'navbar-brand[^>]*>(.*?)</a>', en, re.S).group(1)
    assert "揭榜挂帅" in re.search(r"<h1[^>]*>(.*?)</h1>", en, re.S).group(1)


def test_words_that_mean_something_else_in_chinese_are_told_apart(client_as):
    """Does the expert's profile ask for their 职称 (not a listing's 标题), and the dashboard chart's goal
    line read 目标 (not the audit trail's 对象)?"""
    profile = client_as("expert").get("/profile?lang=zh").get_data(as_text=True)
    assert "职称" in profile
    dashboard = client_as("admin").get("/dashboards?lang=zh").get_data(as_text=True)
    assert '"target": "目标"' in dashboard.replace("\\u76ee\\u6807", "目标"), "the chart's goal line"


def test_enum_labels_follow_each_request_language_after_being_remembered(app):
    """The label filter remembers translations per process: is a label remembered in Chinese still shown in
    English to the next English request, and in Chinese again after that?"""
    template = app.jinja_env.from_string("{{ industry|label('Industry') }}|{{ city|label('HubCity') }}")

    def in_language(code: str) -> str:
        with app.app_context(), app.test_request_context(f"/?lang={code}"):  # each request its own context
            return template.render(industry="new_energy", city="chongqing")

    chinese, english, again = in_language("zh_CN"), in_language("en"), in_language("zh_CN")
    assert english == "New energy|Chongqing" and chinese == again == "新能源|重庆"
