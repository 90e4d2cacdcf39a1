"""Survey comments of the sample data: what customers write, by topic, tied to their score.

A comment is drawn from the templates of one topic. Satisfied customers write about what went well
(speed, competence, attitude); dissatisfied ones about what went wrong at the stage they were asked
about, and mostly about what really went wrong on their claim: an under-paid assessment, a slow or
late payment, the late surveyors of the slow-survey branch (the planted topic, ``_truth.json``).
A score of 3 sometimes gets a lukewarm comment without a topic.

The templates are the customers' words, written apart from the warehouse's topic dictionary
(``dbt/seeds/verbatim_topic_keywords.csv``): most of them use a phrase of the dictionary, some use
wording it does not list (``UNLISTED_WORDING``), so a match rate below 100% is expected and measured.

Every choice here is a pure function of the response number (a 64-bit hash, as for names and
phones), so comments draw nothing from the generator's random streams: adding or changing a
template never moves another number of the data set.
"""

from __future__ import annotations

import numpy as np

from dagster_project.tools.sample_data.names import mix64

# Complaints, by topic: topic code -> templates (the codes are those of dbt/seeds/verbatim_topics.csv)
TEMPLATES: dict[str, tuple[str, ...]] = {
    "SURVEYOR_LATE": (
        "查勘员来得太慢，等了很久",
        "现场等了两个多小时查勘员才到",
        "报案后查勘员迟迟不来",
        "查勘员迟到了一个多小时，耽误事",
        "出险后在路边等查勘员，半天才到",
        "查勘员到场太晚，天都黑了",
        "等了快三个小时才有人来现场",  # unlisted wording
    ),
    "ASSESSMENT_UNFAIR": (
        "定损金额太低，不合理",
        "对定损结果有异议，修车要自己贴钱",
        "定损员压价，修理厂都说不够",
        "定损偏低，和报价差太多",
        "定损反复修改，很麻烦",
        "修一下要两千多，只给一千，谁能接受",  # unlisted wording
    ),
    "PAYMENT_SLOW": (
        "赔款迟迟不到账",
        "理赔太慢了，一个月了还没到账",
        "协议签了好久，赔款还没到账",
        "打款慢，催了好几次",
        "赔付太慢，影响生活",
        "钱到现在都没收到",  # unlisted wording
    ),
    "HARD_TO_REACH": (
        "电话排队太久",
        "打了好几次才接通",
        "客服电话一直占线，打不通",
        "晚上打电话没人接",
    ),
    "POOR_ATTITUDE": (
        "工作人员态度一般",
        "客服态度不好，很不耐烦",
        "问了几句就敷衍了事",
        "查勘员态度很差",
    ),
    "PAPERWORK": (
        "材料要求太多，跑了好几趟",
        "手续繁琐，流程复杂",
        "同样的材料反复提交",
    ),
    "UNCLEAR_EXPLANATION": (
        "报案时客服说不清楚流程",
        "赔多少没说清，也不告诉依据",
        "条款解释不清，听不懂",
    ),
    "UNRESOLVED": (
        "问题没有解决",
        "投诉拖了很久才处理",
        "处理结果不满意，还要继续投诉",
        "反映了几次都不了了之",
    ),
}
# Praise is about the stage the customer was asked about: stage -> topic -> templates.
PRAISE: dict[str, dict[str, tuple[str, ...]]] = {
    "REPORT": {"FAST_SERVICE": ("报案电话很快就接通了", "报案后马上有人联系，很及时"),
               "PROFESSIONAL": ("报案流程简单，指引清楚", "客服一次说清楚，很规范"),
               "GOOD_ATTITUDE": ("客服态度很好，很耐心", "接线员很热情")},
    "SURVEY": {"FAST_SERVICE": ("查勘员来得很及时，处理迅速", "现场处理很快，谢谢"),
               "PROFESSIONAL": ("查勘员很专业，讲解清楚", "查勘员经验丰富，拍照取证很规范"),
               "GOOD_ATTITUDE": ("查勘员态度好，很耐心", "查勘员热情，讲得明白")},
    "ASSESSMENT": {"FAST_SERVICE": ("定损很快，当天就定好了", "定损及时，没耽误修车"),
                   "PROFESSIONAL": ("定损员很专业，定损合理", "定损结果满意，讲解清楚"),
                   "GOOD_ATTITUDE": ("定损员态度诚恳，沟通顺畅", "定损员很耐心地解释")},
    "PAYMENT": {"FAST_SERVICE": ("赔款到账很快", "理赔速度超出预期，点赞", "赔付及时，手续简单"),
                "PROFESSIONAL": ("理赔流程规范，材料一次就齐了", "理赔人员很专业"),
                "GOOD_ATTITUDE": ("理赔人员服务周到", "工作人员很贴心，谢谢")},
    "COMPLAINT": {"FAST_SERVICE": ("投诉处理及时，问题已解决", "投诉当天就有回复，效率高"),
                  "PROFESSIONAL": ("处理结果可以接受，处理很规范", "处理人员很专业"),
                  "GOOD_ATTITUDE": ("工作人员态度诚恳", "回访时态度很好，谢谢")},
}
NEUTRAL = ("还行吧", "一般般，没什么说的", "还可以", "就那样")
UNLISTED_WORDING = {"等了快三个小时才有人来现场", "修一下要两千多，只给一千，谁能接受", "钱到现在都没收到"}

# What a customer writes about, by stage: (topic, weight) for satisfied and dissatisfied customers
# whose claim gives no particular reason.
GOOD_TOPICS: dict[str, tuple[tuple[str, float], ...]] = {
    "REPORT": (("FAST_SERVICE", 0.4), ("PROFESSIONAL", 0.3), ("GOOD_ATTITUDE", 0.3)),
    "SURVEY": (("FAST_SERVICE", 0.34), ("PROFESSIONAL", 0.33), ("GOOD_ATTITUDE", 0.33)),
    "ASSESSMENT": (("PROFESSIONAL", 0.6), ("GOOD_ATTITUDE", 0.25), ("FAST_SERVICE", 0.15)),
    "PAYMENT": (("FAST_SERVICE", 0.7), ("GOOD_ATTITUDE", 0.15), ("PROFESSIONAL", 0.15)),
    "COMPLAINT": (("GOOD_ATTITUDE", 0.5), ("FAST_SERVICE", 0.3), ("PROFESSIONAL", 0.2)),
}
BAD_TOPICS: dict[str, tuple[tuple[str, float], ...]] = {
    "REPORT": (("HARD_TO_REACH", 0.5), ("UNCLEAR_EXPLANATION", 0.3), ("POOR_ATTITUDE", 0.2)),
    "SURVEY": (("SURVEYOR_LATE", 0.3), ("POOR_ATTITUDE", 0.35), ("UNCLEAR_EXPLANATION", 0.35)),
    "ASSESSMENT": (("ASSESSMENT_UNFAIR", 0.45), ("UNCLEAR_EXPLANATION", 0.3), ("POOR_ATTITUDE", 0.25)),
    "PAYMENT": (("PAYMENT_SLOW", 0.35), ("PAPERWORK", 0.45), ("POOR_ATTITUDE", 0.2)),
    "COMPLAINT": (("UNRESOLVED", 0.6), ("POOR_ATTITUDE", 0.25), ("UNCLEAR_EXPLANATION", 0.15)),
}
# A dissatisfied customer whose claim had a reason writes about it this often.
REASON_SHARE = 0.9
NEUTRAL_SHARE_OF_SCORE_3 = 0.3

_SALT_TOPIC, _SALT_TEMPLATE, _SALT_REASON, _SALT_NEUTRAL = 101, 102, 103, 104


def hash_uniform(keys: np.ndarray, salt: int) -> np.ndarray:
    """Uniform [0, 1) per key, a pure function of (key, salt)."""
    h = mix64(mix64(np.asarray(keys, dtype=np.uint64) ^ np.uint64(salt * 0x2545F4914F6CDD1D % (1 << 63))))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _weighted(u: np.ndarray, choices: tuple[tuple[str, float], ...]) -> np.ndarray:
    names = np.array([c for c, _ in choices], dtype=object)
    cdf = np.cumsum([w for _, w in choices])
    return names[np.minimum(np.searchsorted(cdf / cdf[-1], u, side="right"), len(names) - 1)]


def comment_topics(response_ids: np.ndarray, stage: str, satisfied: np.ndarray, score: np.ndarray,
                   reason: np.ndarray | None = None) -> np.ndarray:
    """The topic each comment is about (None: a lukewarm comment without a topic). ``reason`` holds,
    per response, the topic its claim gives a dissatisfied customer reason to write about (or None)."""
    n = len(response_ids)
    keys = np.asarray(response_ids, dtype=np.int64)
    good = _weighted(hash_uniform(keys, _SALT_TOPIC), GOOD_TOPICS[stage])
    bad = _weighted(hash_uniform(keys, _SALT_TOPIC), BAD_TOPICS[stage])
    topic = np.where(satisfied, good, bad).astype(object)
    if reason is not None:
        use = (~satisfied) & (reason != None) & (hash_uniform(keys, _SALT_REASON) < REASON_SHARE)  # noqa: E711
        topic[use] = reason[use]
    neutral = (score == 3) & (hash_uniform(keys, _SALT_NEUTRAL) < NEUTRAL_SHARE_OF_SCORE_3)
    topic[neutral] = None
    return topic if n else np.array([], dtype=object)


def comment_text(response_id: int, stage: str, topic: str | None) -> str:
    """The comment of one response about ``topic`` (a template of the topic, picked by the response)."""
    if topic is None:
        options = NEUTRAL
    elif topic in TEMPLATES:
        options = TEMPLATES[topic]
    else:
        options = PRAISE[stage][topic]
    u = hash_uniform(np.array([response_id]), _SALT_TEMPLATE)[0]
    return options[min(int(u * len(options)), len(options) - 1)]
