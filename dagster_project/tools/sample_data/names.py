"""Fake people and free text: Chinese names, 18-character ID numbers, mobile numbers, comments.

A customer's personal data is a pure function of (seed, customer number), computed vectorised
with a 64-bit mixing hash, so the generator never has to keep it in memory: every file that
mentions a customer derives the same name, ID number and phone again.
"""

from __future__ import annotations

import numpy as np

SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁"
    "任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴"
    "莫孔向汤"
)
GIVEN_CHARS = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂英华玉萍红娥玲芬燕彬鹏辉斌宇浩凯健俊帆帅旭宁"
    "龙林欣佳雪晨阳思梦琳瑶婷慧颖子涵博文轩一诺雨泽嘉怡海波建国志强永红春梅秋菊德胜立新"
)

# GB/T 2260 province prefixes of the branches' provinces (first two digits of an ID number).
PROVINCE_CODES = {
    "JL": 22, "LN": 21, "HL": 23, "BJ": 11, "TJ": 12, "HE": 13, "SD": 37, "JS": 32, "SH": 31, "ZJ": 33,
    "FJ": 35, "GD": 44, "HA": 41, "HB": 42, "HN": 43, "SC": 51, "CQ": 50, "SN": 61, "NM": 15, "AH": 34,
}

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = np.array(list("10X98765432"))
_BIRTH_ORIGIN = np.datetime64("1955-01-01", "D")
_BIRTH_SPAN_DAYS = 47 * 365


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a well-spread 64-bit hash of each element (vectorised)."""
    z = np.asarray(x, dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _hashes(keys: np.ndarray, seed: int, salt: int) -> np.ndarray:
    base = np.uint64((seed * 1_000_003 + salt * 7_919) % (1 << 63))
    return mix64(mix64(np.asarray(keys, dtype=np.uint64) ^ base))


def names(keys: np.ndarray, seed: int, salt: int = 1) -> list[str]:
    """Two- or three-character names (surname + one or two given characters)."""
    h = _hashes(keys, seed, salt)
    s = (h % np.uint64(len(SURNAMES))).astype(np.int64)
    g1 = ((h >> np.uint64(12)) % np.uint64(len(GIVEN_CHARS))).astype(np.int64)
    g2 = ((h >> np.uint64(24)) % np.uint64(len(GIVEN_CHARS))).astype(np.int64)
    two_given = ((h >> np.uint64(40)) % np.uint64(10)) < np.uint64(7)  # 70 % have two given characters
    return [SURNAMES[a] + GIVEN_CHARS[b] + (GIVEN_CHARS[c] if t else "")
            for a, b, c, t in zip(s.tolist(), g1.tolist(), g2.tolist(), two_given.tolist())]


def phones(keys: np.ndarray, seed: int, salt: int = 2) -> list[str]:
    """Mainland mobile numbers: ``1[3-9]`` + 9 digits."""
    h = _hashes(keys, seed, salt)
    second = (np.uint64(3) + h % np.uint64(7)).astype(np.int64)
    rest = ((h >> np.uint64(8)) % np.uint64(1_000_000_000)).astype(np.int64)
    return [f"1{a}{b:09d}" for a, b in zip(second.tolist(), rest.tolist())]


def id_check_digits(first17: list[str]) -> list[str]:
    """ISO 7064 MOD 11-2 check character of 17-digit prefixes (``X`` stands for 10)."""
    if not first17:
        return []
    digits = np.frombuffer("".join(first17).encode("ascii"), dtype=np.uint8).reshape(-1, 17).astype(np.int64) - 48
    return _ID_CHECK[(digits @ _ID_WEIGHTS) % 11].tolist()


def id_card_numbers(keys: np.ndarray, province_codes: np.ndarray, seed: int, salt: int = 3) -> list[str]:
    """18-character resident ID numbers: region (province of the branch), birth date, sequence,
    check character (may be X)."""
    h = _hashes(keys, seed, salt)
    city = (h % np.uint64(5) + np.uint64(1)).astype(np.int64)
    district = ((h >> np.uint64(4)) % np.uint64(20) + np.uint64(1)).astype(np.int64)
    birth_days = ((h >> np.uint64(12)) % np.uint64(_BIRTH_SPAN_DAYS)).astype(np.int64)
    births = np.datetime_as_string(_BIRTH_ORIGIN + birth_days, unit="D")
    births = np.strings.replace(births, "-", "").tolist()
    seq = ((h >> np.uint64(40)) % np.uint64(1000)).astype(np.int64)
    first17 = [f"{p:02d}{c:02d}{d:02d}{b}{s:03d}" for p, c, d, b, s in
               zip(np.asarray(province_codes).tolist(), city.tolist(), district.tolist(), births, seq.tolist())]
    return [f + c for f, c in zip(first17, id_check_digits(first17))]


# A phone number a customer types into a survey comment (PII the warehouse scrubs).
PHONE_COMMENT_TEMPLATES = ("请尽快联系我，电话{phone}", "有问题打我手机{phone}", "回电{phone}，谢谢")

RESOLUTIONS = {
    "AT_FAULT": ("经核实我司存在过错，已向客户致歉并补偿", "已责成机构整改并补付赔款"),
    "PARTIAL": ("经核实部分属实，已协商解决", "已加快理赔进度并向客户解释"),
    "NOT_AT_FAULT": ("经核实我司处理符合合同约定，已向客户解释", "客户诉求不符合条款约定，已耐心解释"),
    "WITHDRAWN": ("客户主动撤诉",),
    "NOT_ACCEPTED": ("不属于消费投诉受理范围，已告知客户",),
    "DUPLICATE": ("重复投诉，已并入原投诉处理",),
}

AUDIT_FINDINGS_LATE = "查勘员到达超时{minutes}分钟"
AUDIT_FINDINGS_ASSESS = "定损规范性不足，需加强培训"
AUDIT_FINDINGS_PAY = "赔款支付渠道单一，手续繁琐"
AUDIT_FINDINGS_OK = "服务规范，无明显问题"
