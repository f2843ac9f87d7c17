"""Chinese names for grids and people, drawn from syllable lists with the seeded generator."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

PLACE_FIRST = tuple("东西南北中金银华兴和安平宁盛红青白石龙凤永新建民福泰康庆丰河滨雁拱伏广"
                    "武秀文明光嘉瑞祥阳林湖泉定敦陇皋兰柳杏桃梨榆杨松柏云霞彩虹瓦砖窑")
PLACE_SECOND = tuple("岗滩坪园桥湾台山川源阳城关门口庄堡寨营沟岭泉河街墩苑洲林坡塬峡沙渠井")
ESTATE_FIRST = ("锦绣", "阳光", "金色", "碧水", "华润", "万达", "绿地", "世纪", "新港", "滨河",
                "丽景", "翠苑", "银滩", "雁园", "金城", "天庆", "中海", "鸿运", "宏达", "安居",
                "和平", "幸福", "康乐", "紫荆", "海棠", "枫林", "书香", "御景", "汇丰", "瑞祥")
ESTATE_SECOND = ("花园", "家园", "苑", "雅居", "名城", "新村", "公寓", "嘉园", "华府", "里")
VILLAGE_SURNAMES = tuple("王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾")
VILLAGE_ENDINGS = tuple("家庄家湾家坪家沟家台家堡家寨家岔家川家窑家峡家塬")
DEDICATED_KINDS = ("大厦", "市场", "大学", "产业园")
SURNAMES = tuple("王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董"
                 "袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟"
                 "熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严武戴莫孔向汤")
GIVEN = tuple("伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰萍红建国文辉力鹏飞"
              "宇浩然欣怡梓涵子轩雨婷佳琪晨博文俊峰志强海燕春梅晓东")
MOBILE_PREFIXES = ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151",
                   "152", "153", "155", "156", "157", "158", "159", "166", "177", "180", "181",
                   "182", "183", "185", "186", "187", "188", "189", "199")


class NameMaker:
    """Draws names, unique within each parent, from one seeded generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def _pick(self, items: tuple[str, ...]) -> str:
        return items[int(self.rng.integers(len(items)))]

    def _unique(self, draw: Callable[[], str], used: set[str]) -> str:
        """A drawn name not in used, recorded in used."""
        for _ in range(50):
            name = draw()
            if name not in used:
                used.add(name)
                return name
        raise RuntimeError("ran out of distinct names")

    def place(self) -> str:
        """A two-character place name."""
        return self._pick(PLACE_FIRST) + self._pick(PLACE_SECOND)

    def large(self, kind: str, used: set[str]) -> str:
        """A street (街道), town (镇) or township (乡) name."""
        if kind == "urban":
            return self._unique(lambda: self.place() + "街道", used)
        suffix = "乡" if self.rng.random() < 0.25 else "镇"
        return self._unique(lambda: self.place() + suffix, used)

    def medium(self, kind: str, used: set[str]) -> str:
        """A community (社区) or village (村) name."""
        if kind == "urban":
            return self._unique(lambda: self.place() + "社区", used)

        def village() -> str:
            if self.rng.random() < 0.6:
                i = int(self.rng.integers(len(VILLAGE_ENDINGS) // 2)) * 2
                return self._pick(VILLAGE_SURNAMES) + "".join(VILLAGE_ENDINGS[i:i + 2]) + "村"
            return self.place() + "村"

        return self._unique(village, used)

    def estate(self) -> str:
        """A residential estate (小区) name."""
        return self._pick(ESTATE_FIRST) + self._pick(ESTATE_SECOND)

    def small(self, kind: str, medium_name: str, number: int, used: set[str]) -> str:
        """A small grid's name; number counts the grids of that kind in the medium grid."""
        if kind == "rural":
            return self._unique(lambda: f"{medium_name}第{number}组", used)
        if kind == "dedicated":
            return self._unique(
                lambda: self.place() + self._pick(DEDICATED_KINDS) + "专属网格", used)
        if self.rng.random() < 0.5:
            return self._unique(lambda: self.estate() + "小区网格", used)
        return self._unique(lambda: f"{medium_name}第{number}网格", used)

    def people(self, count: int) -> list[str]:
        """count person names, drawn at once."""
        surname = self.rng.integers(len(SURNAMES), size=count).tolist()
        first = self.rng.integers(len(GIVEN), size=count).tolist()
        second = self.rng.integers(len(GIVEN), size=count).tolist()
        two = (self.rng.random(count) < 0.7).tolist()
        return [SURNAMES[s] + GIVEN[f] + (GIVEN[g] if t else "")
                for s, f, g, t in zip(surname, first, second, two, strict=True)]

    def mobiles(self, count: int) -> list[str]:
        """count synthetic 11-digit mobile numbers, drawn at once."""
        prefix = self.rng.integers(len(MOBILE_PREFIXES), size=count).tolist()
        rest = self.rng.integers(0, 10**8, size=count).tolist()
        return [f"{MOBILE_PREFIXES[p]}{r:08d}" for p, r in zip(prefix, rest, strict=True)]
