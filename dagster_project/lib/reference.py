"""Reference data shared by the generator, ingest validation and the dbt seeds.

The dbt seeds under ``dbt/seeds/`` are written from these tables (``cs-warehouse seeds`` /
``write_seeds``) and committed; a test checks that they agree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Branch:
    code: str
    name_zh: str
    name_en: str
    province_zh: str
    urban_share: float  # share of claims in urban locations
    surveyor_sla_minutes: int  # company target for surveyor arrival
    size_weight: float  # relative book size (lognormal-ish, sigma ~0.8)


# ~20 provincial branches (机构). Dubang is headquartered in Jilin, hence the large JL book.
BRANCHES: tuple[Branch, ...] = (
    Branch("JL", "吉林分公司", "Jilin Branch", "吉林", 0.62, 60, 3.2),
    Branch("LN", "辽宁分公司", "Liaoning Branch", "辽宁", 0.68, 60, 1.9),
    Branch("HL", "黑龙江分公司", "Heilongjiang Branch", "黑龙江", 0.60, 75, 1.4),
    Branch("BJ", "北京分公司", "Beijing Branch", "北京", 0.90, 45, 1.6),
    Branch("TJ", "天津分公司", "Tianjin Branch", "天津", 0.85, 45, 0.8),
    Branch("HE", "河北分公司", "Hebei Branch", "河北", 0.58, 75, 1.1),
    Branch("SD", "山东分公司", "Shandong Branch", "山东", 0.63, 60, 1.5),
    Branch("JS", "江苏分公司", "Jiangsu Branch", "江苏", 0.72, 60, 1.3),
    Branch("SH", "上海分公司", "Shanghai Branch", "上海", 0.93, 45, 1.0),
    Branch("ZJ", "浙江分公司", "Zhejiang Branch", "浙江", 0.74, 60, 1.2),
    Branch("FJ", "福建分公司", "Fujian Branch", "福建", 0.66, 60, 0.7),
    Branch("GD", "广东分公司", "Guangdong Branch", "广东", 0.78, 60, 1.3),
    Branch("HA", "河南分公司", "Henan Branch", "河南", 0.55, 90, 1.0),
    Branch("HB", "湖北分公司", "Hubei Branch", "湖北", 0.63, 75, 0.8),
    Branch("HN", "湖南分公司", "Hunan Branch", "湖南", 0.58, 75, 0.7),
    Branch("SC", "四川分公司", "Sichuan Branch", "四川", 0.57, 90, 0.9),
    Branch("CQ", "重庆分公司", "Chongqing Branch", "重庆", 0.70, 75, 0.5),
    Branch("SN", "陕西分公司", "Shaanxi Branch", "陕西", 0.61, 75, 0.6),
    Branch("NM", "内蒙古分公司", "Inner Mongolia Branch", "内蒙古", 0.52, 120, 0.6),
    Branch("AH", "安徽分公司", "Anhui Branch", "安徽", 0.57, 75, 0.6),
)
BRANCH_CODES: tuple[str, ...] = tuple(b.code for b in BRANCHES)

# The five claim-journey stages surveyed for satisfaction (服务环节).
STAGES: tuple[tuple[str, str, str, int], ...] = (
    # code, Chinese label, English label, display order
    ("REPORT", "报案", "Claim report", 1),
    ("SURVEY", "查勘", "On-site survey", 2),
    ("ASSESSMENT", "定损", "Loss assessment", 3),
    ("PAYMENT", "给付", "Payment", 4),
    ("COMPLAINT", "投诉", "Complaint handling", 5),
)
STAGE_CODES: tuple[str, ...] = tuple(s[0] for s in STAGES)

LINES_OF_BUSINESS: tuple[tuple[str, str, str], ...] = (
    ("MOTOR", "机动车辆险", "Motor"),
    ("PROPERTY", "企业财产险", "Commercial property"),
    ("HOME", "家庭财产险", "Home contents"),
    ("ACCIDENT", "意外伤害险", "Personal accident"),
    ("LIABILITY", "责任险", "Liability"),
)
BUSINESS_SOURCES: tuple[tuple[str, str, str], ...] = (
    ("DIRECT", "直销", "Direct"),
    ("AGENT", "个人代理", "Agent"),
    ("DEALER", "车商渠道", "Car dealer"),
    ("BANK", "银行代理", "Bancassurance"),
    ("ONLINE", "网销", "Online"),
)
