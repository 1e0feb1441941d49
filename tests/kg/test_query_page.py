"""The endpoint's query page: examples written for the store it serves, run in a real browser.

The browser test drives Debian's ``chromium`` with its ``chromedriver`` through Selenium (``.ci/run``
installs them); it skips, saying why, only where no browser is installed.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from kg.endpoint.server import EndpointConfig, SparqlEndpoint
from kg.endpoint.examples import example_queries

LIBRARY_KG = """
@prefix ex: <https://example.org/library#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ex:Book a rdfs:Class . ex:Novel rdfs:subClassOf ex:Book .
ex:dune a ex:Novel ; rdfs:label "Dune" ; ex:author ex:herbert ; ex:year 1965 .
ex:emma a ex:Novel ; rdfs:label "Emma" ; ex:author ex:austen ; ex:year 1815 .
ex:sicp a ex:Book ; rdfs:label "SICP" ; ex:author ex:abelson ; ex:year 1985 .
"""


@pytest.fixture
def library_store(store, tmp_path):
    """A store of another KG than the arithmetic one, with one run aligned to its books."""
    kg_file = tmp_path / "library.ttl"
    kg_file.write_text(LIBRARY_KG)
    store.load_rdf([kg_file])
    run = store.create_run("books", {}, 0, "test")
    store.add_codes(run, np.arange(3), np.ones(3), np.array([0.5, 0.3, 0.2]))
    ids = store.add_inputs("covers", "test", [f"c{i}" for i in range(6)])
    store.add_assignments(run, ids, np.zeros(6, dtype=int), np.array([0, 0, 0, 1, 1, 2]), np.linspace(0.4, 0.9, 6))
    books = [f"https://example.org/library#{b}" for b in ("dune", "emma", "sicp")]
    store.add_alignments(run, np.arange(3), books, [0.9, 0.8, 0.7], "hungarian")
    return store


def test_examples_fit_the_store_and_all_answer(library_store):
    examples = example_queries(library_store)
    assert len(examples) >= 6
    assert not any("arith:" in text for text in examples.values())
    assert any("<https://example.org/library#author>" in text for text in examples.values())
    for name, text in examples.items():
        assert len(library_store.sparql(text)) > 0, name


def test_examples_of_a_store_without_runs_leave_run_queries_out(kg_store):
    examples = example_queries(kg_store)
    assert not any("ns:hasConcept" in text or "run:" in text for text in examples.values())
    for name, text in examples.items():
        assert len(kg_store.sparql(text)) > 0, name


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("no browser: install Debian's chromium and chromium-driver (what .ci/run does)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the test extra)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    return webdriver.Chrome(options=options, service=Service(driver))


def test_page_runs_a_typed_query_and_shows_the_table_and_errors(library_store):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    try:
        with SparqlEndpoint(library_store, EndpointConfig(port=0)).start() as endpoint:
            browser.get(endpoint.url.removesuffix("sparql"))
            buttons = [b.text for b in browser.find_elements(By.CSS_SELECTOR, "#examples button")]
            assert buttons == list(example_queries(library_store))

            query = "SELECT ?book ?year WHERE { ?book <https://example.org/library#year> ?year } ORDER BY ?year"
            box = browser.find_element(By.ID, "query")
            box.clear()
            box.send_keys(query)
            browser.find_element(By.ID, "run").click()
            wait = WebDriverWait(browser, 20)
            wait.until(lambda b: "ms" in b.find_element(By.ID, "status").text and b.find_elements(By.CSS_SELECTOR, "#out table"))
            header = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#out thead th")]
            rows = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                    for tr in browser.find_elements(By.CSS_SELECTOR, "#out tbody tr")]
            expected = library_store.sparql(query)
            assert header == expected.vars
            assert rows == [[f"<{book}>", str(year)] for book, year in expected.rows]
            assert browser.find_element(By.ID, "status").text.startswith(f"{len(expected.rows)} rows, ")

            box.clear()
            box.send_keys("SELECT ?x WHERE { ?x ")
            browser.find_element(By.ID, "run").click()
            wait.until(lambda b: b.find_elements(By.ID, "error"))
            error = browser.find_element(By.ID, "error").text
            assert error.startswith("400 ") and "SPARQL syntax error" in error
            assert not browser.find_elements(By.CSS_SELECTOR, "#out table")
            assert browser.find_element(By.ID, "status").text.startswith("error, ")
    finally:
        browser.quit()
