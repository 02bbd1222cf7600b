"""Cases carry a departure type; HR filters the queue by it."""

from __future__ import annotations

from cases.departure import DEPARTURE_LABELS, DepartureType, departure_label


def test_every_type_has_a_label():
    assert set(DEPARTURE_LABELS) == {t.value for t in DepartureType}
    assert departure_label("absconding") == "擅自离职" and departure_label("nope") == "nope"


def test_new_cases_are_resignations_and_the_queue_filters(world, client):
    c1, _ = world.case(name="甲")
    c2, _ = world.case(name="乙")
    assert c1.departure_type == "resignation"
    c2.departure_type = "absconding"
    world.s.commit()
    h = world.h(world.manager)
    r = client.get("/api/v1/hr/cases?departure_type=absconding", headers=h)
    assert r.status_code == 200
    assert [i["id"] for i in r.get_json()["items"]] == [c2.id]
    assert r.get_json()["items"][0]["departure_type"] == "absconding"
    r = client.get("/api/v1/hr/cases?departure_type=resignation&departure_type=agreement", headers=h)
    assert [i["id"] for i in r.get_json()["items"]] == [c1.id]
    r = client.get("/api/v1/hr/cases?departure_type=quit", headers=h)
    assert r.status_code == 422
