"""Sample events (民情事件) over the 90 days ending 2026-11-24, Beijing time.

About 85% land in urban or dedicated grids, about 1% outside the city (no expected grid), and a
few % are given in GCJ-02 or BD-09 as phone map SDKs report them; the WGS84 truth is kept in
true_lon / true_lat. For gridworker reports the reporter is the grid's own gridworker.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import shapely

from gis.synth.catalogue import Grid
from gis.synth.names import NameMaker
from gis.synth.offsets import wgs84_to
from gis.synth.roster import Gridworker
from gis.synth.sampling import DECIMALS, points_inside, points_outside

BEIJING = timezone(timedelta(hours=8))
FIRST_DAY = datetime(2026, 8, 27, tzinfo=BEIJING)
DAYS = 90  # 2026-08-27 .. 2026-11-24
NOW = FIRST_DAY + timedelta(days=DAYS)
URBAN_SHARE = 0.85
OUTSIDE_SHARE = 0.01
CRS_SHARES = (("gcj02", 0.03), ("bd09", 0.03))

SOURCES = (("12345", "RX", 0.40), ("110", "JJ", 0.14), ("信访", "XF", 0.08),
           ("网络留言", "WL", 0.12), ("网格员上报", "WG", 0.21), ("法院案件", "FY", 0.05))
# category: (share of events, complaint template, words for {x})
CATEGORIES: dict[str, tuple[float, str, tuple[str, ...]]] = {
    "矛盾纠纷": (0.16, "{p}居民因{x}发生纠纷，请求调解",
             ("停车位", "楼上漏水", "宅基地界址", "装修")),
    "安全隐患": (0.13, "{p}{x}，存在安全隐患，请尽快处理",
             ("燃气管道老化", "电动车在楼道充电", "消防通道被堵", "井盖破损")),
    "逾期交房": (0.05, "{p}附近{x}楼盘逾期未交房，业主要求给出交房时间",
             ("在建", "预售", "安置")),
    "拆迁安置": (0.05, "{p}{x}，群众多次反映",
             ("安置房迟迟未分配", "拆迁补偿款未到位", "过渡费停发")),
    "劳资欠薪": (0.08, "{p}一处{x}拖欠工人工资，请求帮助追讨",
             ("工地", "餐馆", "物流公司", "商场")),
    "环境卫生": (0.14, "{p}{x}，影响居民生活",
             ("垃圾堆放未清运", "污水外溢", "油烟扰民", "公厕脏乱")),
    "物业管理": (0.11, "{p}物业{x}",
             ("服务不作为", "乱收费", "电梯长期故障无人维修", "停车收费混乱")),
    "噪音扰民": (0.09, "{p}{x}夜间噪音扰民", ("工地", "广场舞", "酒吧", "商铺音响")),
    "道路交通": (0.10, "{p}{x}",
             ("路口信号灯故障", "道路破损坑洼", "占道经营影响通行", "乱停车堵塞道路")),
    "其他": (0.09, "{p}居民咨询{x}", ("社保办理", "低保政策", "户籍迁移", "老年证办理")),
}
SEVERITY_SHARES = (0.45, 0.33, 0.16, 0.06)
RESPONSE_HOURS = {1: 360, 2: 168, 3: 72, 4: 24}  # due time after report, by severity
HOUR_SHARES = np.array([1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9, 7, 8, 9, 9, 9, 8, 7, 7, 6, 4, 3, 2],
                       dtype=np.float64)
COLUMNS = ("source", "source_id", "reported_at", "category", "severity", "status", "due_at",
           "reporter_name", "reporter_phone", "text", "crs", "lon", "lat", "true_lon", "true_lat",
           "expected_code")


def _statuses(reported: list[datetime], due: list[datetime],
              rng: np.random.Generator) -> list[str]:
    """Older events are mostly resolved or closed; some overdue ones are still open."""
    draws = rng.random(len(reported))
    out = []
    for when, deadline, u in zip(reported, due, draws.tolist(), strict=True):
        if deadline < NOW:
            options, shares = ("closed", "resolved", "in_progress", "open"), (0.55, 0.30, 0.09)
        elif NOW - when < timedelta(days=1):
            options, shares = ("open", "in_progress", "resolved", "closed"), (0.6, 0.3, 0.1)
        else:
            options, shares = ("open", "in_progress", "resolved", "closed"), (0.3, 0.4, 0.25)
        out.append(options[int(np.searchsorted(np.cumsum(shares), u, side="right"))])
    return out


def _choose(rng: np.random.Generator, shares: np.ndarray | tuple[float, ...], n: int) -> list[int]:
    """n independent draws of an index with the given shares."""
    p = np.asarray(shares, dtype=np.float64)
    return [int(v) for v in rng.choice(len(p), size=n, p=p / p.sum())]


def _pick_grids(smalls: list[Grid], inside: int, rng: np.random.Generator) -> np.ndarray:
    """Grid indices of the events inside the city: busy grids get many, quiet ones few."""
    urban = np.array([i for i, g in enumerate(smalls) if g.kind != "rural"])
    rural = np.array([i for i, g in enumerate(smalls) if g.kind == "rural"])
    n_urban = round(URBAN_SHARE * inside)
    picks = []
    for pool, n in ((urban, n_urban), (rural, inside - n_urban)):
        weight = rng.gamma(0.8, size=len(pool))
        picks.append(rng.choice(pool, size=n, p=weight / weight.sum()))
    grids = np.concatenate(picks)
    return grids[rng.permutation(len(grids))]


def make_events(smalls: list[Grid], workers: dict[str, Gridworker], count: int,
                rng: np.random.Generator, names: NameMaker) -> list[dict[str, str]]:
    """count sample events as CSV rows, sorted by report time, source and source id."""
    geoms = np.array([g.geometry for g in smalls], dtype=object)
    outside = max(1, round(OUTSIDE_SHARE * count)) if count >= 100 else 0
    grids = _pick_grids(smalls, count - outside, rng)
    inner = points_inside(geoms, grids, rng)
    minx, miny, maxx, maxy = shapely.total_bounds(geoms)
    outer = points_outside(shapely.STRtree(geoms), outside,
                           (minx - 0.2, miny - 0.2, maxx + 0.2, maxy + 0.2), 0.2, rng)
    places = np.concatenate([grids, np.full(outside, -1)])
    truth = np.vstack([inner, outer])

    sources = _choose(rng, np.array([s[2] for s in SOURCES]), count)
    category_names = list(CATEGORIES)
    categories = _choose(rng, np.array([CATEGORIES[c][0] for c in category_names]), count)
    severities = [v + 1 for v in _choose(rng, SEVERITY_SHARES, count)]
    days = rng.integers(DAYS, size=count).tolist()
    hours = _choose(rng, HOUR_SHARES, count)
    seconds = rng.integers(3600, size=count).tolist()
    fillers = rng.integers(1 << 30, size=count).tolist()
    crs_draws = _choose(rng, (1.0 - sum(s for _, s in CRS_SHARES), *(s for _, s in CRS_SHARES)),
                        count)
    crs_names = ("wgs84", *(c for c, _ in CRS_SHARES))
    people, phones = names.people(count), names.mobiles(count)
    reported = [FIRST_DAY + timedelta(days=d, hours=h, seconds=s)
                for d, h, s in zip(days, hours, seconds, strict=True)]
    due = [r + timedelta(hours=RESPONSE_HOURS[v])
           for r, v in zip(reported, severities, strict=True)]
    statuses = _statuses(reported, due, rng)

    rows = []
    for k in range(count):
        grid = smalls[int(places[k])] if places[k] >= 0 else None
        source = SOURCES[sources[k]][0]
        category = category_names[categories[k]]
        reporter, phone = people[k], phones[k]
        if source == "网格员上报" and grid is not None:
            reporter, phone = workers[grid.code].name, workers[grid.code].phone
        _, template, words = CATEGORIES[category]
        place = grid.parent.name if grid is not None and grid.parent is not None else "城郊"
        text = template.format(p=place, x=words[fillers[k] % len(words)])
        crs = crs_names[crs_draws[k]]
        true_lon, true_lat = float(truth[k, 0]), float(truth[k, 1])
        lon, lat = wgs84_to(crs, true_lon, true_lat)
        rows.append({
            "source": source, "source_id": "", "reported_at": reported[k].isoformat(),
            "category": category, "severity": str(severities[k]), "status": statuses[k],
            "due_at": due[k].isoformat(), "reporter_name": reporter, "reporter_phone": phone,
            "text": text, "crs": crs, "lon": repr(round(lon, DECIMALS)),
            "lat": repr(round(lat, DECIMALS)), "true_lon": repr(true_lon),
            "true_lat": repr(true_lat), "expected_code": grid.code if grid is not None else "",
        })
    rows.sort(key=lambda r: (r["reported_at"], r["source"], r["expected_code"], r["true_lon"]))
    prefixes = {s[0]: s[1] for s in SOURCES}
    counters = dict.fromkeys(prefixes, 0)
    for row in rows:
        counters[row["source"]] += 1
        day = row["reported_at"][:10].replace("-", "")
        row["source_id"] = f"{prefixes[row['source']]}{day}{counters[row['source']]:06d}"
    return rows
