"""The readiness dashboard (`/`) in real Chromium: the chart and the distributions show what the
API answers, the URL restores a view, and an unreachable API is said so."""

import math
import re
from pathlib import Path
from typing import Any

import pytest
from browsing import Site
from conftest import SAMPLE, csv_text, http_request, load, trend_row
from playwright.sync_api import Locator, Page, expect

VIEW = """query($megatrend: String!) {
  macrotrendReadiness(megatrend: $megatrend) {
    macrotrend trendCount ratedCount averageTrlScore
  }
  trendFacets(filter: {megatrend: $megatrend}) {
    technologyReadinessLevel { value count }
    impactStrength { value count }
    steepl { value count }
  }
}"""
# The facets' headings on the page and the labels of their values.
FACETS = {
    "technologyReadinessLevel": (
        "Technology readiness level",
        {"PILOT": "Pilot", "DEVELOPMENT": "Development", "DEPLOY": "Deploy", "NONE": "Not rated"},
    ),
    "impactStrength": ("Impact", {"LOW": "Low", "MEDIUM": "Medium", "HIGH": "High"}),
    "steepl": (
        "STEEPL",
        {
            "S": "Social",
            "T": "Technological",
            "E": "Economic or environmental",
            "P": "Political",
            "L": "Legal",
        },
    ),
}
# The chart as ECharts holds it, read through the page's own (vendored) ECharts module.
CHART = """async () => {
  const echarts = await import("/static/vendor/echarts/echarts.esm.min.js");
  const option = echarts.getInstanceByDom(document.getElementById("radar")).getOption();
  const { center, radius, startAngle, clockwise } = option.radar[0];
  return {
    layout: { center, radius, startAngle, clockwise },
    axes: option.radar[0].indicator.map(({ name, min, max }) => ({ name, min, max })),
    series: option.series.map((s) => ({ type: s.type, values: s.data.map((d) => d.value) })),
  };
}"""
# The radar's geometry, which the test needs to point at a macrotrend: centre at 50 % of the
# width and 52 % of the height, the scale's end at 74 % of half the smaller side, the first axis
# up and the others counterclockwise.
LAYOUT = {"center": ["50%", "52%"], "radius": "74%", "startAngle": 90, "clockwise": False}


def api_view(site: Site, megatrend: str) -> dict[str, Any]:
    response = http_request(
        "POST", f"{site.url}/graphql", json={"query": VIEW, "variables": {"megatrend": megatrend}}
    )
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def cells(rows: Locator) -> list[list[str]]:
    return [[c.strip() for c in row.locator("th, td").all_inner_texts()] for row in rows.all()]


def graphql_requests(site: Site) -> int:
    return sum(1 for url in site.requests if url.endswith("/graphql"))


def check_view(page: Page, site: Site, megatrend: str) -> None:
    """The radar, its data table and the distributions equal the API's answer."""
    expected = api_view(site, megatrend)
    readiness = expected["macrotrendReadiness"]
    chart_data = page.get_by_role("table", name="Mean readiness per macrotrend")
    if not chart_data.is_visible():
        page.get_by_text("Data of the chart").click()
    rows = chart_data.locator("tbody tr")
    expect(chart_data.get_by_role("rowheader")).to_have_text([r["macrotrend"] for r in readiness])
    assert cells(rows) == [
        [
            r["macrotrend"],
            "not rated" if r["averageTrlScore"] is None else f"{r['averageTrlScore']:.2f}",
            str(r["ratedCount"]),
            str(r["trendCount"]),
        ]
        for r in readiness
    ]

    chart = page.evaluate(CHART)
    assert chart["axes"] == [{"name": r["macrotrend"], "min": 0, "max": 9} for r in readiness]
    values = [r["averageTrlScore"] or 0 for r in readiness]
    assert chart["series"] == [{"type": "radar", "values": [values]}]
    assert chart["layout"] == LAYOUT
    # The tooltip at each macrotrend's point: its name, mean (or "not rated") and rated count.
    radar = page.get_by_role("img", name="Radar chart")
    box = radar.bounding_box()
    assert box is not None
    centre_x, centre_y = box["width"] * 0.5, box["height"] * 0.52
    scale = 0.74 * min(box["width"], box["height"]) / 2
    for index, r in enumerate(readiness):
        angle = math.radians(90 + index * 360 / len(readiness))
        # A point at 0 shares the centre with the others: just off it, along its own axis.
        distance = max(values[index] / 9 * scale, 2)
        x, y = centre_x + distance * math.cos(angle), centre_y - distance * math.sin(angle)
        radar.hover(position={"x": x, "y": y})
        mean = "not rated" if r["averageTrlScore"] is None else f"{r['averageTrlScore']:.2f}"
        rated = f"{r['ratedCount']} of {r['trendCount']} rated"
        expect(radar).to_have_text(f"{megatrend}{r['macrotrend']}{mean}{rated}")
    page.get_by_label("Megatrend").hover()  # the tooltip goes

    for facet, (title, labels) in FACETS.items():
        counts = {labels[c["value"]]: c["count"] for c in expected["trendFacets"][facet]}
        region = page.get_by_role("region", name=title, exact=True)
        shown = {
            row.get_by_role("rowheader").inner_text().strip(): int(
                row.get_by_role("cell").last.inner_text()
            )
            for row in region.locator("tbody tr").all()
        }
        assert shown == {label: counts.get(label, 0) for label in shown}
        assert set(counts) <= set(shown)


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.xdist_group("browser-dashboard")
def test_the_chart_and_the_distributions_show_what_the_api_answers(
    page: Page, site: Site, tmp_path: Path
) -> None:
    load(site.db, tmp_path, SAMPLE)
    more = [
        trend_row(
            macrotrend="Edge AI",
            technology_readiness_level="Development",
            challenges_and_research_gaps="Thermal limits",
        ),
        trend_row(
            macrotrend="Unrated Lab",
            technology_readiness_level="",
            challenges_and_research_gaps="Unknown maturity",
        ),
    ]
    load(site.db, tmp_path, csv_text(more))
    means = {
        r["macrotrend"]: r["averageTrlScore"] for r in api_view(site, "AI")["macrotrendReadiness"]
    }
    assert (means["Edge AI"], means["Unrated Lab"]) == (3.5, None)  # a fraction, and no mean
    page.emulate_media(reduced_motion="reduce")  # the chart is drawn at once, not animated

    page.goto("/")
    megatrend = page.get_by_label("Megatrend")
    expect(megatrend).to_have_value("AI")  # the first one, by name
    check_view(page, site, "AI")
    assert graphql_requests(site) == 2  # the megatrends, then everything of the first one

    # A facet value filters the table to its trends.
    page.get_by_role("region", name="Technology readiness level", exact=True).get_by_role(
        "button", name="Deploy"
    ).click()
    trends = page.get_by_role("table", name="Trends", exact=True)
    expect(trends.get_by_role("rowheader")).to_have_text(["AI for Science"])
    remove = "Remove the filter Technology readiness level: Deploy"
    expect(page.get_by_role("button", name=remove)).to_be_visible()

    megatrend.select_option("Quantum Technologies")
    expect(page).to_have_url(re.compile(r"megatrend=Quantum\+Technologies"))
    check_view(page, site, "Quantum Technologies")

    before = graphql_requests(site)
    page.reload()
    check_view(page, site, "Quantum Technologies")
    assert graphql_requests(site) == before + 1  # megatrend known from the URL: one request
    assert site.foreign_requests() == []


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.xdist_group("browser-dashboard")
def test_a_shared_url_restores_the_view_and_back_returns_to_the_previous_one(
    page: Page, site: Site, tmp_path: Path
) -> None:
    rows = [
        trend_row(
            megatrend="Robotics",
            macrotrend=f"Robot {i:02d}",
            total_count_of_publications=i * 100,
            challenges_and_research_gaps="Cost" if i == 7 else f"Battery life {i}",
        )
        for i in range(1, 27)
    ]
    load(site.db, tmp_path, csv_text([*rows, trend_row(megatrend="AI")]))
    by_publications = [f"Robot {i:02d}" for i in range(26, 0, -1) if i != 7]  # 25 with "battery"
    first_page, second_page = by_publications[:10], by_publications[10:20]

    page.goto("/")
    expect(page.get_by_label("Megatrend")).to_have_value("AI")
    page.get_by_label("Megatrend").select_option("Robotics")
    expect(page.get_by_text("Page 1 of 3", exact=True)).to_be_visible()
    trends = page.get_by_role("table", name="Trends", exact=True)
    trends.get_by_role("button", name="Publications").click()
    header = trends.get_by_role("columnheader", name="Publications")
    expect(header).to_have_attribute("aria-sort", "descending")
    page.get_by_label("Search trends").fill("battery")
    expect(page.get_by_text("Showing 1\N{EN DASH}10 of 25 trends", exact=True)).to_be_visible()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_text("Page 2 of 3", exact=True)).to_be_visible()
    expect(trends.get_by_role("rowheader")).to_have_text(second_page)
    shared = page.url

    page.go_back()
    expect(page.get_by_text("Page 1 of 3", exact=True)).to_be_visible()
    expect(trends.get_by_role("rowheader")).to_have_text(first_page)
    page.go_back()
    expect(page.get_by_label("Search trends")).to_have_value("")
    expect(page.get_by_text("Showing 1\N{EN DASH}10 of 26 trends", exact=True)).to_be_visible()
    page.go_forward()
    page.go_forward()
    expect(trends.get_by_role("rowheader")).to_have_text(second_page)

    other = page.context.new_page()
    other.on("pageerror", lambda exc: site.errors.append(f"uncaught: {exc}"))
    other.on("request", lambda req: site.requests.append(req.url))
    other.goto(shared)
    expect(other.get_by_label("Megatrend")).to_have_value("Robotics")
    expect(other.get_by_label("Search trends")).to_have_value("battery")
    table = other.get_by_role("table", name="Trends", exact=True)
    expect(table.get_by_role("columnheader", name="Publications")).to_have_attribute(
        "aria-sort", "descending"
    )
    expect(other.get_by_text("Page 2 of 3", exact=True)).to_be_visible()
    expect(table.get_by_role("rowheader")).to_have_text(second_page)
    other.get_by_role("button", name="Previous").click()  # a page this tab has not seen
    expect(other.get_by_text("Page 1 of 3", exact=True)).to_be_visible()
    expect(table.get_by_role("rowheader")).to_have_text(first_page)
    assert site.foreign_requests() == []


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
@pytest.mark.xdist_group("browser-dashboard")
def test_an_unreachable_api_is_announced_and_try_again_loads_the_view(
    page: Page, site: Site, tmp_path: Path
) -> None:
    load(site.db, tmp_path, SAMPLE)
    page.emulate_media(reduced_motion="reduce")
    # The network fails between the browser and the server (the server itself cannot be
    # stopped under a running page by these fixtures).
    page.route("**/graphql", lambda route: route.abort("connectionrefused"))
    page.goto("/?megatrend=Mobility")
    expect(page.get_by_role("alert")).to_contain_text("The trends API cannot be reached")
    site.errors.clear()  # Chromium logs the refused request as a console error, as expected

    page.unroute("**/graphql")
    page.get_by_role("button", name="Try again").click()
    expect(page.get_by_role("alert")).to_be_hidden()
    expect(page.get_by_label("Megatrend")).to_have_value("Mobility")
    check_view(page, site, "Mobility")
