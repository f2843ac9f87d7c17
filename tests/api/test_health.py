from fastapi.testclient import TestClient


def test_health_json_counts_the_synthetic_city(client: TestClient) -> None:
    body = client.get("/health").json()
    assert body["grids"] == {"large": 110, "medium": 1086, "small": 7507}
    assert body["grid_version"] == 1
    assert body["database"]["postgis"].startswith("3.")
    assert "minqing_test" in body["database"]["url"]


def test_health_page_for_browsers(client: TestClient) -> None:
    page = client.get("/health", headers={"accept": "text/html"})
    assert page.headers["content-type"].startswith("text/html")
    assert "<td id='count-small'>7507</td>" in page.text
    assert "<td id='count-medium'>1086</td>" in page.text
    assert "<td id='count-large'>110</td>" in page.text


def test_readyz_and_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready"
    assert ready["grids"]["small"] == 7507
