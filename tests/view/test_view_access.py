"""The view's own token (datapool/view/access.py): no page, frame or data without it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from view_support import get, serving

from datapool.view.access import REFUSED
from datapool.view.app import create_app
from datapool.view.data import UnknownDataset, ViewData

VIEW_TOKEN = "view-token-for-tests"


class NoDatasets:
    """A source that knows no dataset: enough to tell a refused request from an answered one."""

    def datasets(self) -> list[str]:
        return []

    def load(self, dataset: str) -> ViewData:
        raise UnknownDataset(dataset)

    def frame(self, dataset: str, key: str) -> tuple[bytes, str]:
        raise UnknownDataset(dataset)


@pytest.fixture
def url() -> Iterator[str]:
    with serving(create_app(NoDatasets(), access_token=VIEW_TOKEN)) as base:
        yield base


def _get(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        with e:
            return e.code


def test_a_request_without_the_token_is_refused_saying_where_the_token_is(url: str) -> None:
    status, body = get(f"{url}/datasets/unknown")
    assert status == 401 and REFUSED in body.decode()
    status, body = get(f"{url}/api/datasets/unknown/meta")
    assert status == 401 and json.loads(body) == {"detail": REFUSED}


def test_a_wrong_token_is_refused_wherever_it_is_given(url: str) -> None:
    assert get(f"{url}/datasets/unknown?token=not-it")[0] == 401
    assert _get(f"{url}/datasets/unknown", {"Authorization": "Bearer not-it"}) == 401
    assert _get(f"{url}/datasets/unknown", {"Cookie": f"datapool_view_{url.rsplit(':', 1)[1]}=not-it"}) == 401


def test_the_token_in_the_address_a_cookie_or_a_bearer_header_lets_the_request_through(url: str) -> None:
    # Through: the request reaches the app, which answers its own 404 for the unknown dataset.
    assert get(f"{url}/datasets/unknown?token={VIEW_TOKEN}")[0] == 404
    assert _get(f"{url}/datasets/unknown", {"Authorization": f"Bearer {VIEW_TOKEN}"}) == 404
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    with pytest.raises(urllib.error.HTTPError) as first:
        browser.open(f"{url}/datasets/unknown?token={VIEW_TOKEN}", timeout=30)
    first.value.close()
    assert first.value.code == 404
    # The cookie the address set carries the page's later requests, without the token in them.
    with pytest.raises(urllib.error.HTTPError) as later:
        browser.open(f"{url}/api/datasets/unknown/meta", timeout=30)
    later.value.close()
    assert later.value.code == 404
