"""The sample-data generator: all six landing sources (docs/ingest.md), day by day.

``generate(out_dir, scale=, start=, days=, seed=)`` simulates a motor-dominated P&C book and its
customer service and writes the files exactly as the source systems export them (formats in the
``dagster_project.lib.ingest.*`` module docstrings), plus ``_truth.json`` with the planted effects.

How it works, so that memory stays flat and the output is reproducible:
- Day by day. The state is the policy book (policies in force or awaiting their renewal
  decision), a few small arrays per customer, a queue of future claim days, and formatted rows
  waiting for the day of their timestamp. Everything about a claim (milestones, surveys, calls,
  a possible complaint ticket) is drawn when it is reported, and its rows are parked in per-day
  buckets until that day's files are written; rows dated after the last day are dropped.
- Every random draw comes from a numpy Generator seeded by (seed, day, stream), and nothing
  depends on wall-clock time or hash ordering, so the same arguments give byte-identical files.
- Work is vectorised per day and per batch; only complaint tickets (a few per 10k policies) are
  built one by one.

The opening book: policies issued in the 365 days before ``start`` and still in force land in the
first day's policies file (with their historical issue dates), so claims, calls and renewals are
in steady state from day one.
"""

from __future__ import annotations

import json
import math
import resource
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from dagster_project.settings import eprint
from dagster_project.tools.sample_data import comments as cm
from dagster_project.tools.sample_data import names as nm
from dagster_project.tools.sample_data import params as P
from dagster_project.tools.sample_data.book import ColumnTable, GrowArray
from dagster_project.tools.sample_data.defects import MANIFEST_NAME, write_defects
from dagster_project.tools.sample_data.workhours import WorkingHourClock
from dagster_project.tools.sample_data.writers import (
    SECONDS_PER_DAY, Clock, LineBuckets, money, with_nulls, write_csv, write_json_array, write_jsonl,
    write_xlsx,
)
from dagster_project.lib.ingest import audits as audits_mod
from dagster_project.lib.ingest import call_logs as calls_mod
from dagster_project.lib.ingest import claim_events as claims_mod
from dagster_project.lib.ingest import complaints as complaints_mod
from dagster_project.lib.ingest import policies as policies_mod
from dagster_project.lib.ingest import surveys as surveys_mod
from dagster_project.lib.reference import BRANCHES, STAGE_CODES

SOURCES = ("policies", "claim_events", "call_logs", "surveys", "complaints", "audits")
CONTRACTS = {
    "policies": policies_mod.CONTRACT, "claim_events": claims_mod.CONTRACT, "call_logs": calls_mod.CONTRACT,
    "surveys": surveys_mod.CONTRACT, "complaints": complaints_mod.CONTRACT, "audits": audits_mod.CONTRACT,
}
CALL_HEADER = [zh for zh, _ in sorted(calls_mod.HEADER_MAP.items(),
                                     key=lambda kv: calls_mod.CONTRACT.column_names.index(kv[1]))]

NEVER = np.iinfo(np.int32).max  # a day that never comes (no renewal decision / no cancellation)

# Random streams: one Generator per (day, stream) so adding draws to one source never shifts
# another source's numbers.
S_SETUP, S_OPENING, S_POLICIES, S_CLAIMS, S_CALLS, S_COMPLAINTS, S_AUDITS, S_SURVEYS = range(8)
# the follow-up loop's own streams (keyed by a response or complaint number, or by day for the
# repeat calls), so that its draws never shift the numbers of the streams above
S_FOLLOWUP, S_REPEATS, S_ESCALATIONS = 8, 9, 10

BR_CODES = np.array([b.code for b in BRANCHES])
N_BRANCHES = len(BRANCHES)
LOB_CODES = P.LINE_CODES
SRC_CODES = P.SOURCES
EVENT_TYPES = claims_mod.EVENT_TYPES
E = {name: i for i, name in enumerate(EVENT_TYPES)}
STAGE_INDEX = {s: i for i, s in enumerate(STAGE_CODES)}
QUEUE_INDEX = {q: i for i, q in enumerate(calls_mod.QUEUES)}
HOUR_P = np.array(P.HOUR_WEIGHTS) / sum(P.HOUR_WEIGHTS)


def _lognormal(rng: np.random.Generator, median_sigma: tuple[float, float], size) -> np.ndarray:
    median, sigma = median_sigma
    return median * np.exp(sigma * rng.standard_normal(size))


def _pick(rng: np.random.Generator, weights, n: int) -> np.ndarray:
    """Indices drawn with the given weights (inverse CDF; cheaper than Generator.choice(p=))."""
    cdf = np.cumsum(np.asarray(weights, dtype=np.float64))
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(n), side="right"), len(cdf) - 1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def expected_complaint_weight() -> float:
    """Mean complaint propensity weight of a claim report (the weights in ``_Generator._claims``),
    from the outcome shares: used to turn the per-policy-year complaint rate into a per-claim one."""
    w = P.COMPLAINT_WEIGHT
    cancelled = P.REPORT_CANCEL_SHARE
    rejected = P.REJECT_SHARE
    paid = 1.0 - cancelled - rejected - P.ZERO_CLOSE_SHARE
    # Approximate shares of the other drivers (measured on generated data, see tests).
    underpaid, slow, breach = 0.13, 0.10, 0.02
    rest = 1.0 - cancelled - rejected
    other = rest * (underpaid * w["underpaid"] + (1 - underpaid) * (
        (paid / rest) * (slow * w["slow"] + breach * w["breach"] + (1 - slow - breach) * w["base"])
        + (1 - paid / rest) * w["base"]))
    return cancelled * w["cancelled"] + rejected * w["rejected"] + other


@dataclass
class _Counters:
    policy_by_year: dict
    claim_by_year: dict
    complaint_by_year: dict
    event: int = 0
    call: int = 0
    response: int = 0
    audit: int = 0
    pid: int = 0
    customer: int = 0


class _Generator:
    def __init__(self, out_dir: Path, *, scale: float, start: date, days: int, seed: int, progress: bool,
                 complaints_per_10k: float = P.COMPLAINTS_PER_10K_POLICY_YEARS, planted_effects: bool = True):
        """``complaints_per_10k`` is a knob for tests that need many complaints on a small book;
        ``planted_effects=False`` draws the same book without any planted effect (null data)."""
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        if days < 1:
            raise ValueError(f"days must be >= 1, got {days}")
        self.out_dir, self.scale, self.start, self.days, self.seed = out_dir, scale, start, days, seed
        self.progress = progress
        self.planted = planted_effects
        self.last_day = days - 1
        self.clock = Clock(start, days)
        self.cnt = _Counters({}, {}, {})
        self.rows = {s: 0 for s in SOURCES}
        self.files = {s: 0 for s in SOURCES}

        setup = self._rng(0, S_SETUP)
        self.br_size_p = np.array([b.size_weight for b in BRANCHES]) / sum(b.size_weight for b in BRANCHES)
        self.br_urban = np.array([b.urban_share for b in BRANCHES])
        self.br_sla = np.array([b.surveyor_sla_minutes for b in BRANCHES])
        self.br_province = np.array([nm.PROVINCE_CODES[b.code] for b in BRANCHES])
        # Branch random effects, centred on the book-weighted mean so that company-level rates
        # meet their targets whatever the seed.
        freq_effect = P.BRANCH_FREQ_SIGMA * setup.standard_normal(N_BRANCHES)
        self.br_freq = np.exp(freq_effect) / (self.br_size_p * np.exp(freq_effect)).sum()
        stage_effect = P.BRANCH_STAGE_SIGMA * setup.standard_normal((N_BRANCHES, len(STAGE_CODES)))
        self.br_stage = stage_effect - self.br_size_p @ stage_effect
        self.br_reach = setup.uniform(0.75, 0.85, N_BRANCHES)
        self.congestion = np.exp(P.CONGESTION_SIGMA * setup.standard_normal((days + 400, len(calls_mod.QUEUES))))
        # Without planted effects no branch is the slow-survey or long-complaint one (-1).
        self.slow_br = int(np.flatnonzero(BR_CODES == P.SLOW_SURVEY_BRANCH)[0]) if self.planted else -1
        self.long_br = int(np.flatnonzero(BR_CODES == P.LONG_COMPLAINT_BRANCH)[0]) if self.planted else -1
        self.arrival_mult = np.ones(N_BRANCHES)
        if self.planted:
            self.arrival_mult[self.slow_br] = P.SLOW_SURVEY_ARRIVAL_MULTIPLIER
        self.cluster_mult = P.HIGH_RISK_CLUSTER["claim_frequency_multiplier"] if self.planted else 1.0
        self.kd_renewal = {s: (P.KEY_DRIVER_RENEWAL_LOGIT[s] if self.planted else 0.0) for s in P.KEY_DRIVER_STAGES}
        self.kd_nps = {s: (v if self.planted else 0.0) for s, v in P.KEY_DRIVER_LATER_NPS_POINTS.items()}
        # Without planted effects no branch neglects its follow-ups (-1).
        self.neglect_br = int(np.flatnonzero(BR_CODES == P.NEGLECTED_FOLLOWUP_BRANCH)[0]) if self.planted else -1
        self.followup_in_time_p = np.full(N_BRANCHES, P.FOLLOWUP_IN_TIME_PROBABILITY)
        if self.planted:
            self.followup_in_time_p[self.neglect_br] = P.NEGLECTED_FOLLOWUP_IN_TIME_PROBABILITY
        self.working_clock = WorkingHourClock(start, -800, days + 1600, *P.BUSINESS_HOURS)

        self.lob_share = np.array([P.LINES[c][0] for c in LOB_CODES])
        self.lob_prem = np.array([[P.LINES[c][1], P.LINES[c][2]] for c in LOB_CODES])
        self.lob_freq = np.array([P.LINES[c][3] for c in LOB_CODES])
        self.lob_sev = np.array([P.severity_multiplier(c) for c in LOB_CODES])
        self.lob_injury = np.array([P.LINES[c][5] for c in LOB_CODES])
        self.cross_p = np.array([P.CROSS_HOLD_LINE_WEIGHTS[c] for c in LOB_CODES])
        cross = 1.0 - P.NEW_CUSTOMER_SHARE
        self.new_customer_lob_p = (self.lob_share - cross * self.cross_p) / P.NEW_CUSTOMER_SHARE
        if (self.new_customer_lob_p < 0).any():
            raise ValueError("CROSS_HOLD_LINE_WEIGHTS cannot be met with LINES shares and NEW_CUSTOMER_SHARE")
        self.src_p_motor = np.array(P.SOURCE_WEIGHTS["MOTOR"])
        self.src_p_other = np.array(P.SOURCE_WEIGHTS["OTHER"])
        self.motor = LOB_CODES.index("MOTOR")
        self.cluster_lob = LOB_CODES.index(P.HIGH_RISK_CLUSTER["line_of_business"])
        self.cluster_src = SRC_CODES.index(P.HIGH_RISK_CLUSTER["business_source"])
        self.sum_insured_rate = np.array([0.0, 500.0, 1000.0, 1500.0, 300.0])  # sum insured / premium

        # Staff pools scale sub-linearly with the book.
        self.n_agents = int(np.clip(round(150 * scale ** 0.7), 20, 9999))
        self.n_handlers = int(np.clip(round(20 * scale ** 0.5), 5, 9999))
        self.surveyor_pool = np.clip(np.round(self.br_size_p * N_BRANCHES * 15 * math.sqrt(scale)), 3, 999).astype(int)

        self.per_day = scale * P.POLICIES_PER_YEAR_AT_SCALE_1 / 365.0
        complaints_per_policy_day = complaints_per_10k / 10_000 / 365.0
        self.non_claim_complaint_rate = (1 - P.CLAIM_RELATED_COMPLAINT_SHARE) * complaints_per_policy_day
        self.claim_complaint_p = (P.CLAIM_RELATED_COMPLAINT_SHARE * complaints_per_10k / 10_000
                                  / self._reports_per_policy_year() / expected_complaint_weight())
        # The regulator-routed share stays that of the calibrated rates when a test scales the volume.
        self.complaint_channel_p = np.array(P.complaint_channel_weights())
        # new tickets; escalations to the regulator make up the rest of its share
        self.direct_channel_p = np.array(P.direct_complaint_channel_weights())
        hotline = self.complaint_channel_p[P.COMPLAINT_CHANNELS.index("HOTLINE")]
        self.extra_complaint_call_rate = max(
            P.COMPLAINT_CALLS_PER_POLICY_YEAR - hotline * complaints_per_10k / 10_000, 0) / 365.0

        self.book = ColumnTable({
            "pid": "i8", "cust": "i8", "br": "i1", "lob": "i1", "src": "i1", "yy": "i2", "yseq": "i4",
            "premium": "f8", "sum_insured": "f8", "vehicle_price": "f8", "start": "i4", "end": "i4",
            "renew": "i4", "cancel": "i4", "frailty": "f4", "nclaims": "i2",
            # the planted key driver: per stage, the renewal logit shift the latest claim left and its day
            **{f"kd_{s}": "f4" for s in P.KEY_DRIVER_STAGES}, **{f"kdday_{s}": "i4" for s in P.KEY_DRIVER_STAGES},
        }, capacity=int(self.per_day * 400) + 1024)
        self.cust_branch = GrowArray("i1", 0)
        self.cust_active = GrowArray("i1", 0)
        self.cust_cmp_close = GrowArray("i4", -NEVER)  # day the customer's latest complaint closed
        self.cust_cmp_bucket = GrowArray("i1", -1)  # 0 fast, 1 mid, 2 slow, 3 unresolved
        self.cust_fu_due = GrowArray("i8", -(1 << 40))  # deadline (seconds) of the latest follow-up case
        self.cust_fu_followed = GrowArray("i1", 0)  # ... and whether it was called back in time
        self.claim_queue: dict[int, list[np.ndarray]] = {}
        self.buckets = {s: LineBuckets(self.last_day) for s in SOURCES if s != "audits"}
        self.audit_rows: list[tuple[int, list]] = []
        self._direct_policies = None  # an open file while the opening book is written
        self._day0_policies_started = False
        self.stats = {"claims_reported": 0, "complaint_tickets": 0, "policy_days_in_force": 0,
                      "complaints_per_10k_policy_years": complaints_per_10k}

    # ---------------------------------------------------------------------------------- helpers
    def _rng(self, day: int, stream: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(day + 100_000, stream)))

    def _keyed_rng(self, stream: int, *key: int) -> np.random.Generator:
        """A stream of its own for one record (a survey batch, a complaint ticket)."""
        return np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(300_000, stream, *key)))

    def _reports_per_policy_year(self) -> float:
        dealer = self.src_p_motor[SRC_CODES.index(P.HIGH_RISK_CLUSTER["business_source"])]
        mult = self.cluster_mult
        freq = self.lob_freq.copy()
        freq[self.motor] *= 1 + dealer * (mult - 1)
        return float((self.lob_share * freq).sum()) / (1 - P.REPORT_CANCEL_SHARE)

    def _year(self, days: np.ndarray) -> np.ndarray:
        return (self.clock.origin_d + np.asarray(days, dtype=np.int64)).astype("datetime64[Y]").astype(np.int64) + 1970

    def _serials(self, counter: dict, years: np.ndarray) -> np.ndarray:
        """Per-year running numbers in the given order (years need not be sorted)."""
        out = np.empty(len(years), dtype=np.int64)
        for y in np.unique(years).tolist():
            idx = np.flatnonzero(years == y)
            base = counter.get(y, 0)
            out[idx] = base + 1 + np.arange(len(idx))
            counter[y] = base + len(idx)
        return out

    def _ids(self, attr: str, n: int) -> np.ndarray:
        base = getattr(self.cnt, attr)
        setattr(self.cnt, attr, base + n)
        return base + 1 + np.arange(n, dtype=np.int64)

    def policy_nos(self, br: np.ndarray, yy: np.ndarray, yseq: np.ndarray) -> list[str]:
        codes = BR_CODES[br].tolist()
        return [f"P{c}{y % 100:02d}{s:08d}" for c, y, s in zip(codes, yy.tolist(), yseq.tolist())]

    def _tod(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return _pick(rng, HOUR_P, n) * 3600 + rng.integers(0, 3600, n)

    def _new_customers(self, br: np.ndarray) -> np.ndarray:
        ids = self._ids("customer", len(br))
        size = int(ids[-1]) + 1 if len(ids) else 0
        for g in (self.cust_branch, self.cust_active, self.cust_cmp_close, self.cust_cmp_bucket,
                  self.cust_fu_due, self.cust_fu_followed):
            g.ensure(size)
        self.cust_branch.arr[ids] = br
        return ids

    # --------------------------------------------------------------------------------- policies
    def _draw_new_business(self, rng: np.random.Generator, n: int, inforce: np.ndarray) -> dict:
        """Attributes of n new-business policies: mostly new customers, some cross-holders."""
        cust = np.full(n, -1, dtype=np.int64)
        br = _pick(rng, self.br_size_p, n)
        lob = _pick(rng, self.new_customer_lob_p, n)
        cross = rng.random(n) >= P.NEW_CUSTOMER_SHARE
        if cross.any() and len(inforce):
            cand = self.book["cust"][inforce[rng.integers(0, len(inforce), int(cross.sum()))]]
            ok = self.cust_active.arr[cand] < P.MAX_POLICIES_PER_CUSTOMER
            _, first = np.unique(cand, return_index=True)  # one new policy per customer per batch
            ok &= np.isin(np.arange(len(cand)), first)
            idx = np.flatnonzero(cross)[ok]
            cust[idx] = cand[ok]
            br[idx] = self.cust_branch.arr[cand[ok]]
            lob[idx] = _pick(rng, self.cross_p, len(idx))
        fresh = cust < 0
        cust[fresh] = self._new_customers(br[fresh])
        return self._draw_terms(rng, cust, br, lob)

    def _draw_terms(self, rng: np.random.Generator, cust, br, lob) -> dict:
        n = len(cust)
        is_motor = lob == self.motor
        src = np.where(is_motor, _pick(rng, self.src_p_motor, n),
                       _pick(rng, self.src_p_other, n))
        vp = np.round(_lognormal(rng, (P.VEHICLE_PRICE_MEDIAN, P.VEHICLE_PRICE_SIGMA), n), -2)
        median, sigma = self.lob_prem[lob, 0], self.lob_prem[lob, 1]
        # Motor premium follows the vehicle price (purchasing power); the residual keeps sigma 0.5.
        motor_resid = math.sqrt(max(P.LINES["MOTOR"][2] ** 2 - (0.6 * P.VEHICLE_PRICE_SIGMA) ** 2, 0.01))
        z = rng.standard_normal(n)
        premium = np.where(is_motor, median * (vp / P.VEHICLE_PRICE_MEDIAN) ** 0.6 * np.exp(motor_resid * z),
                           median * np.exp(sigma * z))
        premium = np.round(np.maximum(premium, 50.0), 2)
        sum_insured = np.where(is_motor, np.round(vp * rng.uniform(0.7, 1.0, n), -2),
                               np.round(premium * self.sum_insured_rate[lob], -3))
        sum_insured = np.maximum(sum_insured, 1000.0)
        frailty = rng.gamma(P.NB_SHAPE, 1.0 / P.NB_SHAPE, n)
        return {"cust": cust, "br": br, "lob": lob, "src": src, "premium": premium, "sum_insured": sum_insured,
                "vehicle_price": np.where(is_motor, vp, np.nan), "frailty": frailty}

    def _issue(self, rng: np.random.Generator, today: int, issue_days: np.ndarray, start_days: np.ndarray,
               attrs: dict, renewal_of: list[str] | None) -> None:
        """Put policies on the book, write their rows (issue, later cancellation/endorsement) and
        schedule their claims."""
        n = len(issue_days)
        if n == 0:
            return
        br, lob, src = attrs["br"], attrs["lob"], attrs["src"]
        end_days = start_days + 364  # one-year term, end date inclusive
        years = self._year(issue_days)
        yseq = self._serials(self.cnt.policy_by_year, years)
        pid = self._ids("pid", n)

        cancel = np.full(n, NEVER, dtype=np.int64)
        # Changes happen after today and after the start (an opening-book policy started before
        # day 0 can only be cancelled or endorsed from day 1 on).
        first_change = np.maximum(start_days, today) + 1
        change_span = np.maximum(end_days - first_change, 0)
        is_cancel = (rng.random(n) < P.CANCELLATION_SHARE) & (change_span > 0)
        cancel[is_cancel] = first_change[is_cancel] + (rng.random(int(is_cancel.sum())) * change_span[is_cancel]).astype(np.int64)
        lead = rng.integers(P.RENEWAL_LEAD_DAYS[0], P.RENEWAL_LEAD_DAYS[1] + 1, n)
        renew = np.maximum(end_days - lead, today)
        renew = np.where(is_cancel, NEVER, renew)

        # Claims: negative binomial counts (Poisson with the policy's gamma frailty) over the
        # covered days inside the simulated range; reports include the cancelled ones.
        cluster = (lob == self.cluster_lob) & (src == self.cluster_src)
        lam = (self.lob_freq[lob] * self.br_freq[br] * attrs["frailty"]
               * np.where(cluster, self.cluster_mult, 1.0)
               / (1 - P.REPORT_CANCEL_SHARE))
        lo = np.maximum(start_days, 0)
        hi = np.minimum(np.minimum(end_days, cancel - 1), self.last_day)
        span = np.maximum(hi - lo + 1, 0)
        k = rng.poisson(lam * span / 365.0)
        if k.sum():
            owner = np.repeat(np.arange(n), k)
            claim_days = lo[owner] + (rng.random(len(owner)) * span[owner]).astype(np.int64)
            self._queue_claims(claim_days, pid[owner])

        self.book.append(pid=pid, cust=attrs["cust"], br=br, lob=lob, src=src, yy=years, yseq=yseq,
                         premium=attrs["premium"], sum_insured=attrs["sum_insured"],
                         vehicle_price=attrs["vehicle_price"], start=start_days, end=end_days, renew=renew,
                         cancel=np.minimum(cancel, NEVER), frailty=attrs["frailty"], nclaims=np.zeros(n),
                         **{f"kd_{s}": np.zeros(n) for s in P.KEY_DRIVER_STAGES},
                         **{f"kdday_{s}": np.full(n, NEVER) for s in P.KEY_DRIVER_STAGES})
        np.add.at(self.cust_active.arr, attrs["cust"], 1)

        # Rows: the issue row on today's file; a CANCELLED row on the cancellation day; an
        # endorsement (new sum insured and premium, still ACTIVE) on its day.
        nos = self.policy_nos(br, years, yseq)
        cust = attrs["cust"]
        people = self._people_fields(cust)
        fixed = [f"{no},C{c:09d},{pp}," for no, c, pp in zip(nos, cust.tolist(), people)]
        tail = self._policy_tail(br, lob, src, issue_days, start_days, end_days, renewal_of, n)
        vp = with_nulls(money(np.nan_to_num(attrs["vehicle_price"])), ~np.isnan(attrs["vehicle_price"]))
        lines = [f"{f}{t0},{si},{pr},{v},{t1}" for f, t0, si, pr, v, t1 in
                 zip(fixed, tail[0], money(attrs["sum_insured"]), money(attrs["premium"]), vp, tail[1])]
        if self._direct_policies is not None:
            self._direct_policies.write("".join(ln + ",ACTIVE\n" for ln in lines))
            self.rows["policies"] += n
        else:
            self.buckets["policies"].add(np.full(n, today), np.arange(n), [ln + ",ACTIVE" for ln in lines])

        if is_cancel.any():
            idx = np.flatnonzero(is_cancel & (cancel <= self.last_day))
            self.buckets["policies"].add(cancel[idx], np.full(len(idx), SECONDS_PER_DAY // 2),
                                         [lines[i] + ",CANCELLED" for i in idx.tolist()])
        endorse = (rng.random(n) < P.ENDORSEMENT_SHARE) & ~is_cancel & (change_span > 0)
        if endorse.any():
            idx = np.flatnonzero(endorse)
            change_day = first_change[idx] + (rng.random(len(idx)) * change_span[idx]).astype(np.int64)
            ratio = rng.uniform(0.85, 1.15, len(idx))
            new_si = money(np.round(attrs["sum_insured"][idx] * ratio, -2))
            new_pr = money(np.round(attrs["premium"][idx] * (1 + 0.5 * (ratio - 1)), 2))
            rows = [f"{fixed[i]}{tail[0][i]},{si},{pr},{vp[i]},{tail[1][i]},ACTIVE"
                    for i, si, pr in zip(idx.tolist(), new_si, new_pr)]
            self.buckets["policies"].add(change_day, np.full(len(idx), SECONDS_PER_DAY // 2), rows)

    def _people_fields(self, cust: np.ndarray) -> list[str]:
        """``name,id_card_no,phone`` of customers (pure functions of the customer number)."""
        prov = self.br_province[self.cust_branch.arr[cust]]
        return [f"{a},{b},{c}" for a, b, c in zip(nm.names(cust, self.seed), nm.id_card_numbers(cust, prov, self.seed),
                                                   nm.phones(cust, self.seed))]

    def _policy_tail(self, br, lob, src, issue_days, start_days, end_days, renewal_of, n):
        mid = [f"{b},{l},{s}" for b, l, s in zip(BR_CODES[br].tolist(), np.array(LOB_CODES)[lob].tolist(),
                                                  np.array(SRC_CODES)[src].tolist())]
        ren = renewal_of if renewal_of is not None else [""] * n
        after = [f"{i},{s},{e},{r}" for i, s, e, r in zip(self.clock.dates(issue_days), self.clock.dates(start_days),
                                                           self.clock.dates(end_days), ren)]
        return mid, after

    def _queue_claims(self, days: np.ndarray, pids: np.ndarray) -> None:
        keep = days <= self.last_day
        days, pids = days[keep], pids[keep]
        order = np.argsort(days, kind="stable")
        days, pids = days[order], pids[order]
        cuts = np.flatnonzero(np.diff(days)) + 1
        for part_days, part_pids in zip(np.split(days, cuts), np.split(pids, cuts)):
            if len(part_days):
                self.claim_queue.setdefault(int(part_days[0]), []).append(part_pids)

    def _opening_book(self) -> None:
        """Policies issued in the 365 days before the start and still in force on day 0."""
        rng = self._rng(0, S_OPENING)
        n = rng.poisson(self.per_day * 365)
        issue = rng.integers(-365, 0, n)
        start = issue + rng.integers(P.START_DELAY_DAYS[0], P.START_DELAY_DAYS[1] + 1, n)
        order = np.argsort(issue, kind="stable")
        issue, start = issue[order], start[order]
        alive = start + 364 >= 0
        issue, start = issue[alive], start[alive]
        # In chunks, in issue order: later chunks find cross-holding customers among earlier
        # ones, and the rows stream straight into the first day's file instead of memory.
        contract = CONTRACTS["policies"]
        path = self.out_dir / contract.folder / f"{self.start.isoformat()}{contract.file_suffix}"
        chunk = max(5000, len(issue) // 20)
        with open(path, "w", encoding=contract.encoding, newline="") as fh:
            fh.write(",".join(contract.column_names) + "\n")
            self._direct_policies = fh
            for lo in range(0, len(issue), chunk):
                hi = min(lo + chunk, len(issue))
                attrs = self._draw_new_business(rng, hi - lo, np.arange(len(self.book)))
                self._issue(rng, 0, issue[lo:hi], start[lo:hi], attrs, None)
            self._direct_policies = None
        self._day0_policies_started = True

    def _renewals(self, d: int, rng: np.random.Generator) -> None:
        book = self.book
        pos = np.flatnonzero(book["renew"] == d)
        if len(pos) == 0:
            return
        nclaims = book["nclaims"][pos]
        p = np.full(len(pos), P.BASELINE_RENEWAL_RATE)
        p[nclaims >= P.HIGH_RISK_CLAIMS_IN_TERM] -= P.HIGH_RISK_RENEWAL_PENALTY
        # Planted key driver: the satisfaction the latest claim left at the stages reached by today.
        shift = np.zeros(len(pos))
        for s in P.KEY_DRIVER_STAGES:
            shift += np.where(book[f"kdday_{s}"][pos] <= d, book[f"kd_{s}"][pos], 0.0)
        p = _sigmoid(np.log(p / (1 - p)) + shift)
        # Planted win-back: a customer whose complaint closed within the past year renews at the
        # rate of its handling-time bucket.
        cust = book["cust"][pos]
        closed = self.cust_cmp_close.arr[cust].astype(np.int64)
        recent = (closed <= d) & (d - closed <= P.WINBACK_WINDOW_DAYS) & self.planted
        bucket_rates = np.array([P.WINBACK["fast_renewal_rate"], P.WINBACK["mid_renewal_rate"],
                                 P.WINBACK["slow_renewal_rate"], P.WINBACK["unresolved_renewal_rate"]])
        p = np.where(recent, bucket_rates[np.maximum(self.cust_cmp_bucket.arr[cust], 0)], p)
        # Planted recovery: a customer whose latest follow-up case fell due within the past year (and
        # who has no recent complaint) renews at the rate of whether it was called back in time.
        fu_day = self.cust_fu_due.arr[cust] // SECONDS_PER_DAY
        fu_recent = ~recent & (fu_day <= d) & (d - fu_day <= P.FOLLOWUP_RECOVERY["window_days"])
        p = np.where(fu_recent, np.where(self.cust_fu_followed.arr[cust] == 1, P.FOLLOWUP_RECOVERY["followed_renewal_rate"],
                                         P.FOLLOWUP_RECOVERY["not_followed_renewal_rate"]), p)
        renew = rng.random(len(pos)) < p
        pos = pos[renew]
        if len(pos) == 0:
            return
        nc = book["nclaims"][pos]
        # No-claim discount / surcharge on the renewal premium (NCD-like).
        ncd = np.select([nc == 0, nc == 1, nc == 2], [0.95, 1.0, 1.25], 1.5)
        lob = book["lob"][pos]
        is_motor = lob == self.motor
        attrs = {
            "cust": book["cust"][pos].copy(), "br": book["br"][pos].copy(), "lob": lob.copy(),
            "src": book["src"][pos].copy(),
            "premium": np.round(book["premium"][pos] * ncd * np.exp(0.05 * rng.standard_normal(len(pos))), 2),
            "sum_insured": np.where(is_motor, np.maximum(np.round(book["sum_insured"][pos] * 0.9, -2), 1000.0),
                                    book["sum_insured"][pos]),
            "vehicle_price": book["vehicle_price"][pos].copy(), "frailty": book["frailty"][pos].copy(),
        }
        old_nos = self.policy_nos(book["br"][pos], book["yy"][pos], book["yseq"][pos])
        start = book["end"][pos].astype(np.int64) + 1
        self._issue(rng, d, np.full(len(pos), d), start, attrs, old_nos)

    # ----------------------------------------------------------------------------------- claims
    def _claims(self, d: int, pids: np.ndarray, rng: np.random.Generator) -> None:
        book = self.book
        pos = np.searchsorted(book["pid"], pids)
        n = len(pos)
        br = book["br"][pos].astype(np.int64)
        lob = book["lob"][pos].astype(np.int64)
        cust = book["cust"][pos]
        policy_no = self.policy_nos(br, book["yy"][pos], book["yseq"][pos])
        if not np.array_equal(book["pid"][np.minimum(pos, len(book) - 1)], pids):
            raise RuntimeError(f"day {d}: a claim refers to a policy no longer on the book")
        year = int(self._year(np.array([d]))[0])
        serials = self._serials(self.cnt.claim_by_year, np.full(n, year)).tolist()
        claim_no = [f"CL{c}{year % 100:02d}{s:08d}" for c, s in zip(BR_CODES[br].tolist(), serials)]
        self.stats["claims_reported"] += n

        report = d * SECONDS_PER_DAY + self._tod(rng, n)
        u = rng.random(n)
        cancelled = u < P.REPORT_CANCEL_SHARE
        rejected = (u >= P.REPORT_CANCEL_SHARE) & (u < P.REPORT_CANCEL_SHARE + P.REJECT_SHARE)
        zero = (u >= P.REPORT_CANCEL_SHARE + P.REJECT_SHARE) & (u < P.REPORT_CANCEL_SHARE + P.REJECT_SHARE + P.ZERO_CLOSE_SHARE)
        paid = ~(cancelled | rejected | zero)
        np.add.at(book["nclaims"], pos[~cancelled], 1)  # add.at: a policy may claim twice a day

        injury = rng.random(n) < self.lob_injury[lob]
        z = rng.standard_normal(n)
        loss = np.where(injury, np.exp(P.SEVERITY_INJURY[0] + P.SEVERITY_INJURY[1] * z),
                        np.exp(P.SEVERITY_PD[0] + P.SEVERITY_PD[1] * z)) * self.lob_sev[lob]
        loss = np.round(np.clip(loss, 100.0, 5_000_000.0), 2)
        estimate = np.maximum(np.round(loss * np.exp(P.ESTIMATE_NOISE_SIGMA * rng.standard_normal(n)), -2), 100.0)
        underpaid = loss < P.UNDERPAID_RATIO * estimate
        urban = rng.random(n) < self.br_urban[br]
        channel = _pick(rng, P.REPORT_CHANNEL_WEIGHTS, n)

        dispatch = report + (_lognormal(rng, P.DISPATCH_MINUTES, n) * 60).astype(np.int64)
        arrival_min = np.where(urban, _lognormal(rng, P.ARRIVAL_MINUTES_URBAN, n),
                               _lognormal(rng, P.ARRIVAL_MINUTES_RURAL, n)) * self.arrival_mult[br]
        arrival = np.maximum(report + (arrival_min * 60).astype(np.int64), dispatch + 60)
        assess_delay = np.where(injury, _lognormal(rng, P.ASSESS_DAYS_AFTER_ARRIVAL_INJURY, n) * SECONDS_PER_DAY,
                                _lognormal(rng, P.ASSESS_HOURS_AFTER_ARRIVAL, n) * 3600)
        assessed = arrival + assess_delay.astype(np.int64)
        small = (~injury) & (loss < P.SMALL_CLAIM)
        zt = rng.standard_normal(n)
        cls_median = np.select([injury, small], [P.AGREE_DAYS_INJURY[0], P.AGREE_DAYS_SMALL[0]], P.AGREE_DAYS_LARGE[0])
        cls_sigma = np.select([injury, small], [P.AGREE_DAYS_INJURY[1], P.AGREE_DAYS_SMALL[1]], P.AGREE_DAYS_LARGE[1])
        agree_days = np.minimum(cls_median * np.exp(cls_sigma * zt), P.MAX_CYCLE_DAYS)
        slow_cycle = zt > 1.2816  # above its class p90
        agreed = np.maximum(report + (agree_days * SECONDS_PER_DAY).astype(np.int64), assessed + 3600)
        docs = assessed + (rng.uniform(0.1, 0.9, n) * (agreed - assessed)).astype(np.int64)
        pay_days = np.where(small, _lognormal(rng, P.PAY_DAYS_SMALL, n), _lognormal(rng, P.PAY_DAYS_LARGE, n))
        breach_forced = rng.random(n) < P.PAYMENT_BREACH_SHARE
        pay_days = np.where(breach_forced, rng.uniform(11, 40, n), pay_days)
        breach = pay_days > 10
        paid_ts = agreed + (pay_days * SECONDS_PER_DAY).astype(np.int64)
        closed_paid = paid_ts + (_lognormal(rng, (6.0, 1.0), n) * 3600).astype(np.int64)
        rejected_ts = assessed + (_lognormal(rng, (5.0, 0.8), n) * SECONDS_PER_DAY).astype(np.int64)
        closed_rej = rejected_ts + rng.integers(3600, 2 * SECONDS_PER_DAY, n)
        closed_zero = assessed + (_lognormal(rng, (3.0, 0.8), n) * SECONDS_PER_DAY).astype(np.int64)
        cancel_ts = report + (_lognormal(rng, (6.0, 1.0), n) * 3600).astype(np.int64)
        cancel_dispatched = cancelled & (dispatch < cancel_ts) & (rng.random(n) < 0.5)
        reopen = paid & (rng.random(n) < P.REOPEN_SHARE_OF_PAID)
        reopen_ts = closed_paid + (_lognormal(rng, (20.0, 0.6), n) * SECONDS_PER_DAY).astype(np.int64)
        paid2 = reopen_ts + (_lognormal(rng, (10.0, 0.5), n) * SECONDS_PER_DAY).astype(np.int64)
        closed2 = paid2 + (_lognormal(rng, (6.0, 1.0), n) * 3600).astype(np.int64)
        amount2 = np.round(loss * rng.uniform(0.1, 0.3, n), 2)
        closed = np.select([paid, rejected, zero], [closed_paid, closed_rej, closed_zero], cancel_ts)

        # Events in milestone order within each claim.
        specs = [
            ("REPORTED", np.ones(n, bool), report, estimate),
            ("SURVEYOR_DISPATCHED", ~cancelled | cancel_dispatched, dispatch, None),
            ("SURVEYOR_ARRIVED", ~cancelled, arrival, None),
            ("ASSESSED", ~cancelled, assessed, loss),
            ("DOCS_COMPLETE", paid, docs, None),
            ("AGREED", paid, agreed, loss),
            ("PAID", paid, paid_ts, loss),
            ("REJECTED", rejected, rejected_ts, None),
            ("CANCELLED", cancelled, cancel_ts, None),
            ("CLOSED", ~cancelled, closed, None),
            ("REOPENED", reopen, reopen_ts, None),
            ("PAID", reopen, paid2, amount2),
            ("CLOSED", reopen, closed2, None),
        ]
        ci_parts, ts_parts, ty_parts, am_parts, k_parts = [], [], [], [], []
        for k, (etype, mask, ts, amount) in enumerate(specs):
            idx = np.flatnonzero(mask)
            ci_parts.append(idx)
            ts_parts.append(ts[idx])
            ty_parts.append(np.full(len(idx), E[etype]))
            am_parts.append(amount[idx] if amount is not None else np.full(len(idx), np.nan))
            k_parts.append(np.full(len(idx), k))
        ci, ets, ety, eam, ek = (np.concatenate(x) for x in (ci_parts, ts_parts, ty_parts, am_parts, k_parts))
        order = np.lexsort((ek, ci))
        ci, ets, ety, eam = ci[order], ets[order], ety[order], eam[order]
        eid = self._ids("event", len(ci))
        surveyor = [f"S{b + 1:02d}{s:03d}" for b, s in
                    zip(br.tolist(), (rng.integers(0, 1 << 30, n) % self.surveyor_pool[br] + 1).tolist())]
        pay_method = np.array(P.PAYMENT_METHODS)[_pick(rng, P.PAYMENT_METHOD_WEIGHTS, len(ci))]
        head = [f"{a},{b}" for a, b in zip(claim_no, policy_no)]
        tail = [f"{'Y' if i else 'N'},{'URBAN' if u else 'RURAL'},{P.REPORT_CHANNELS[c]}"
                for i, u, c in zip(injury.tolist(), urban.tolist(), channel.tolist())]
        amounts = with_nulls(money(np.nan_to_num(eam)), ~np.isnan(eam))
        has_surveyor = np.isin(ety, [E["SURVEYOR_DISPATCHED"], E["SURVEYOR_ARRIVED"]]).tolist()
        has_pay = (ety == E["PAID"]).tolist()
        etype_names = np.array(EVENT_TYPES)[ety].tolist()
        lines = [f"E{e:012d},{head[c]},{t},{ts},{a},{surveyor[c] if hs else ''},{pm if hp else ''},{tail[c]}"
                 for e, c, t, ts, a, hs, pm, hp in zip(eid.tolist(), ci.tolist(), etype_names, self.clock.ts(ets),
                                                        amounts, has_surveyor, pay_method.tolist(), has_pay)]
        self.buckets["claim_events"].add(ets // SECONDS_PER_DAY, ets, lines)

        # Surveys per stage milestone.
        milestones = {"REPORT": (np.ones(n, bool), report), "SURVEY": (~cancelled, arrival),
                      "ASSESSMENT": (~cancelled, assessed), "PAYMENT": (paid, paid_ts)}
        srng = self._rng(d, S_SURVEYS)
        # What a dissatisfied customer has reason to write about (survey comments).
        late = (arrival - report) / 60.0 > self.br_sla[br]
        reasons = {"SURVEY": np.where(late, "SURVEYOR_LATE", None),
                   "ASSESSMENT": np.where(underpaid, "ASSESSMENT_UNFAIR", None),
                   "PAYMENT": np.where(underpaid, "ASSESSMENT_UNFAIR",
                                       np.where(slow_cycle | breach, "PAYMENT_SLOW", None))}
        # Satisfaction per claim and stage, answered or not (the planted key driver): a response
        # reports it; for the others it is drawn from the claim's hash, drawing nothing from srng.
        claim_keys = (self.stats["claims_reported"] - n + np.arange(n, dtype=np.int64)) * 8
        latent: dict[str, np.ndarray] = {}
        for stage, (mask, ts) in milestones.items():
            si = STAGE_INDEX[stage]
            responded = mask & (srng.random(n) < P.SURVEY_RESPONSE_RATE)
            idx = np.flatnonzero(responded)
            x_all = P.logit(P.STAGE_TARGETS[stage]) + P.STAGE_COMPENSATION.get(stage, 0.0) + self.br_stage[br, si]
            if stage == "SURVEY":
                x_all = np.where(br == self.slow_br, P.logit(P.SLOW_SURVEY_SATISFACTION), x_all)
            if stage in ("ASSESSMENT", "PAYMENT"):
                x_all = x_all + P.PENALTY_UNDERPAID * underpaid
            if stage == "PAYMENT":
                x_all = x_all + P.PENALTY_SLOW_CYCLE * slow_cycle + P.PENALTY_PAYMENT_BREACH * breach
            p_sat = _sigmoid(x_all)
            sat = cm.hash_uniform(claim_keys + STAGE_INDEX[stage], 105) < p_sat
            nps_shift = None
            if stage == "PAYMENT" and len(idx):
                nps_shift = sum(self.kd_nps[s] * (latent[s][idx] - latent[f"p_{s}"][idx]) for s in self.kd_nps)
            if len(idx):
                sat[idx] = self._surveys(srng, stage, ts[idx], x_all[idx], [policy_no[i] for i in idx.tolist()],
                                         [claim_no[i] for i in idx.tolist()], [None] * len(idx), cust[idx],
                                         reason=reasons.get(stage, np.full(n, None))[idx], nps_shift=nps_shift)
            latent[stage], latent[f"p_{stage}"] = sat.astype(np.float64), p_sat
            reached = np.flatnonzero(mask)
            if len(reached):
                book[f"kd_{stage}"][pos[reached]] = self.kd_renewal[stage] * (sat[reached] - p_sat[reached])
                book[f"kdday_{stage}"][pos[reached]] = ts[reached] // SECONDS_PER_DAY

        # Calls: the phone report, extra calls chasing the claim, the follow-up after closing.
        crng = self._rng(d, S_CALLS + 100)
        phones = nm.phones(cust, self.seed)
        rep = np.flatnonzero(channel == 0)
        self._calls(crng, "报案", report[rep] - crng.integers(60, 600, len(rep)), br[rep],
                    [phones[i] for i in rep.tolist()], [policy_no[i] for i in rep.tolist()],
                    [claim_no[i] for i in rep.tolist()])
        k_extra = crng.poisson(P.EXTRA_REPORT_CALLS_PER_CLAIM, n)
        ext = np.repeat(np.arange(n), k_extra)
        if len(ext):
            span = np.maximum(closed[ext] - report[ext], 3600)
            when = report[ext] + (crng.uniform(0.05, 1.0, len(ext)) * span).astype(np.int64)
            when = (when // SECONDS_PER_DAY) * SECONDS_PER_DAY + self._tod(crng, len(ext))
            self._calls(crng, "报案", when, br[ext], [phones[i] for i in ext.tolist()],
                        [policy_no[i] for i in ext.tolist()], [claim_no[i] for i in ext.tolist()])
        fol = np.flatnonzero(~cancelled)
        if len(fol):
            fday = closed[fol] // SECONDS_PER_DAY + crng.integers(1, 4, len(fol))
            when = fday * SECONDS_PER_DAY + crng.choice(P.OUTBOUND_HOURS, len(fol)) * 3600 + crng.integers(0, 3600, len(fol))
            self._calls(crng, "回访", when, br[fol], [phones[i] for i in fol.tolist()],
                        [policy_no[i] for i in fol.tolist()], [claim_no[i] for i in fol.tolist()])

        # Complaints arising from the claim experience.
        w = np.select([cancelled, rejected, breach & paid, underpaid, slow_cycle & paid],
                      [P.COMPLAINT_WEIGHT["cancelled"], P.COMPLAINT_WEIGHT["rejected"], P.COMPLAINT_WEIGHT["breach"],
                       P.COMPLAINT_WEIGHT["underpaid"], P.COMPLAINT_WEIGHT["slow"]], P.COMPLAINT_WEIGHT["base"])
        krng = self._rng(d, S_COMPLAINTS)
        comp = np.flatnonzero(krng.random(n) < self.claim_complaint_p * w)
        for i in comp.tolist():
            if rejected[i]:
                anchor, category = rejected_ts[i], "CLAIM_DISPUTE"
            elif underpaid[i] and not cancelled[i]:
                anchor = assessed[i]
                category = "ASSESSMENT_DISPUTE" if krng.random() < 0.6 else "CLAIM_DISPUTE"
            elif (slow_cycle[i] or breach[i]) and paid[i]:
                anchor, category = report[i] + (agreed[i] - report[i]) // 2, "CLAIM_DELAY"
            else:
                anchor = assessed[i] if not cancelled[i] else cancel_ts[i]
                category = ("CLAIM_DISPUTE", "CLAIM_DELAY", "ASSESSMENT_DISPUTE")[krng.choice(3, p=(0.5, 0.3, 0.2))]
            received = int(anchor + _lognormal(krng, (3.0, 0.8), 1)[0] * SECONDS_PER_DAY)
            self._complaint(krng, received, int(br[i]), policy_no[i], claim_no[i], category, int(cust[i]),
                            phones[i])

    # ---------------------------------------------------------------------------------- surveys
    def _surveys(self, rng, stage: str, milestone: np.ndarray, logit_p: np.ndarray, policy_nos: list,
                 claim_nos: list, complaint_nos: list, cust: np.ndarray, *, reason: np.ndarray | None = None,
                 nps_shift: np.ndarray | None = None) -> np.ndarray:
        """Write the responses; returns who was satisfied. ``reason``: the topic a dissatisfied
        customer's claim gives them to write about; ``nps_shift``: NPS points the earlier stages
        of the claim add (the planted key driver), rounded at random from the response's hash."""
        n = len(milestone)
        sent = milestone + (_lognormal(rng, (2.0, 0.6), n) * 3600).astype(np.int64)
        responded = sent + np.minimum(_lognormal(rng, (3.0, 1.2), n) * 3600, 72 * 3600).astype(np.int64) + 30
        satisfied = rng.random(n) < _sigmoid(logit_p + self._recovery_shift(cust, responded))
        score = np.where(satisfied, np.where(rng.random(n) < 0.55, 5, 4), 1 + _pick(rng, (0.15, 0.30, 0.55), n))
        nps_present = rng.random(n) < P.NPS_SHARE
        nps = np.where(satisfied, 7 + _pick(rng, (0.1, 0.25, 0.3, 0.35), n), rng.integers(0, 9, n))
        comment_present = rng.random(n) < P.COMMENT_SHARE
        with_phone = rng.random(n) < P.COMMENT_PHONE_SHARE
        pick = rng.integers(0, 3, n)
        channel = np.array(P.SURVEY_CHANNELS)[_pick(rng, P.SURVEY_CHANNEL_WEIGHTS, n)].tolist()
        agent = rng.integers(1, self.n_agents + 1, n)
        typed_phones = nm.phones(cust * 7 + 3 + rng.integers(0, 1 << 20, n), self.seed, salt=9)
        rid = self._ids("response", n)
        if nps_shift is not None:
            nps = np.clip(nps + np.floor(nps_shift + cm.hash_uniform(rid, 106)).astype(np.int64), 0, 10)
        sent_s, resp_s = self.clock.ts(sent), self.clock.ts(responded)
        topics = cm.comment_topics(rid, stage, satisfied, score, reason)
        lines = []
        for j in range(n):
            comment = None
            if comment_present[j]:
                comment = cm.comment_text(int(rid[j]), stage, topics[j])
                if with_phone[j]:
                    comment += "，" + nm.PHONE_COMMENT_TEMPLATES[pick[j]].format(phone=typed_phones[j])
            rec = {"response_id": f"R{rid[j]:012d}", "channel": channel[j], "sent_ts": sent_s[j],
                   "responded_ts": resp_s[j], "policy_no": policy_nos[j], "claim_no": claim_nos[j],
                   "complaint_no": complaint_nos[j], "stage": stage, "score": int(score[j]),
                   "nps": int(nps[j]) if nps_present[j] else None, "comment": comment,
                   "agent_id": f"A{agent[j]:04d}" if stage in ("REPORT", "COMPLAINT") else None}
            lines.append(json.dumps(rec, ensure_ascii=False))
        self.buckets["surveys"].add(responded // SECONDS_PER_DAY, responded, lines)
        detractors = np.flatnonzero((score <= P.DETRACTOR_MAX_SCORE) & (np.asarray(cust) > 0))
        if len(detractors):
            self._followup_case(self._keyed_rng(S_FOLLOWUP, 0, int(rid[0])), "DETRACTOR", responded[detractors],
                                np.asarray(cust)[detractors], [policy_nos[i] for i in detractors.tolist()],
                                [claim_nos[i] for i in detractors.tolist()])

        return satisfied

    # ------------------------------------------------------------------------- follow-up loop
    def _recovery_shift(self, cust: np.ndarray, responded: np.ndarray) -> np.ndarray:
        """Logit shift of responses given after the deadline of the customer's latest follow-up
        case (within the recovery window): up if the case was called back in time, down if not."""
        cust = np.asarray(cust, dtype=np.int64)
        if len(cust) == 0:
            return np.zeros(0)
        due = self.cust_fu_due.arr[np.maximum(cust, 0)]
        window = P.FOLLOWUP_RECOVERY["window_days"] * SECONDS_PER_DAY
        after = (cust > 0) & (responded > due) & (responded - due <= window)
        followed = self.cust_fu_followed.arr[np.maximum(cust, 0)] == 1
        return np.where(after, np.where(followed, P.FOLLOWUP_RECOVERY["followed_next_satisfied_logit_shift"],
                                        P.FOLLOWUP_RECOVERY["not_followed_next_satisfied_logit_shift"]), 0.0)

    def _followup_case(self, rng, reason: str, opened: np.ndarray, cust: np.ndarray, policy_nos: list,
                       claim_nos: list) -> np.ndarray:
        """Cases opened at ``opened`` (a detractor's response, a complaint's receipt): the call-backs
        (回访) on the case's policy and claim, in time with the branch's probability, else late or
        never; an in-time call-back may first miss the customer. Returns who was called back in time."""
        n = len(opened)
        opened = np.asarray(opened, dtype=np.int64)
        br = self.cust_branch.arr[cust].astype(np.int64)
        hours, clock = P.FOLLOWUP_DEADLINE[reason]
        due = (self.working_clock.add(opened, hours) if clock == "working"
               else opened + int(round(hours * 3600)))
        in_time = rng.random(n) < self.followup_in_time_p[br]
        called = in_time | (rng.random(n) >= P.FOLLOWUP_NEVER_SHARE)
        late_s = (rng.uniform(*P.FOLLOWUP_LATE_HOURS, n) * 3600).astype(np.int64)
        reach = np.where(in_time, opened + (rng.uniform(0.05, 0.95, n) * (due - opened)).astype(np.int64),
                         due + late_s)
        missed = called & (rng.random(n) < P.FOLLOWUP_MISSED_FIRST_ATTEMPT)
        first = opened + (rng.uniform(0.1, 0.9, n) * (reach - opened)).astype(np.int64)
        idx = np.concatenate([np.flatnonzero(missed), np.flatnonzero(called)])
        if len(idx):
            codes = np.concatenate([np.full(int(missed.sum()), calls_mod.OUTCOMES.index("无人接听")),
                                    np.full(int(called.sum()), calls_mod.OUTCOMES.index("接通"))])
            self._calls(rng, "回访", np.concatenate([first[missed], reach[called]]), br[idx],
                        nm.phones(cust[idx], self.seed), [policy_nos[i] for i in idx.tolist()],
                        [claim_nos[i] for i in idx.tolist()], outcome_codes=codes)
        self.cust_fu_due.arr[cust] = due
        self.cust_fu_followed.arr[cust] = in_time
        return in_time

    def _repeat_calls(self, d: int, call_type: str, offered: np.ndarray, answered: np.ndarray, br: np.ndarray,
                      phones: list, policy_nos: list) -> None:
        """Unresolved answered calls come back: the same caller, policy and call type, within the
        repeat window; a call-back can be left unresolved again."""
        rng = self._rng(d, S_REPEATS)
        p = P.REPEAT_CALL_PROBABILITY[call_type]
        while len(offered):
            again = np.flatnonzero(answered & (rng.random(len(offered)) < p))
            if len(again) == 0:
                return
            offered = offered[again] + (rng.uniform(0.25, P.REPEAT_CALL_WINDOW_HOURS, len(again)) * 3600).astype(np.int64)
            br, phones = br[again], [phones[i] for i in again.tolist()]
            policy_nos = [policy_nos[i] for i in again.tolist()]
            answered = self._calls(rng, call_type, offered, br, phones, policy_nos, [None] * len(again))

    # ------------------------------------------------------------------------------------ calls
    def _calls(self, rng, call_type: str, offered: np.ndarray, br: np.ndarray, phones: list, policy_nos: list,
               claim_nos: list, *, always_answered: bool = False, outcome_codes=None) -> np.ndarray:
        """Write the calls; returns which were answered. ``outcome_codes`` (indices into the CTI's
        outbound outcomes) fixes the outcome of outbound calls instead of drawing it."""
        n = len(offered)
        if n == 0:
            return np.zeros(0, dtype=bool)
        offered = np.asarray(offered, dtype=np.int64)
        talk = (_lognormal(rng, (P.TALK_SECONDS[call_type], P.TALK_SIGMA), n)).astype(np.int64) + 5
        wrap = (_lognormal(rng, P.WRAP_UP_SECONDS, n)).astype(np.int64)
        agent = rng.integers(1, self.n_agents + 1, n)
        inbound = call_type in ("报案", "咨询", "投诉")
        outcome = [""] * n
        if inbound:
            queue = {"报案": "CLAIM_REPORT", "咨询": "INQUIRY", "投诉": "COMPLAINT"}[call_type]
            day = np.clip(offered // SECONDS_PER_DAY, 0, len(self.congestion) - 1)
            wait = (_lognormal(rng, P.WAIT_SECONDS, n) * self.congestion[day, QUEUE_INDEX[queue]]).astype(np.int64)
            patience = (_lognormal(rng, P.PATIENCE_SECONDS, n)).astype(np.int64) + 1
            abandoned = (wait > patience) & (not always_answered)
            answered = ~abandoned
            answered_ts = offered + wait
            ended = np.where(abandoned, offered + patience, answered_ts + talk)
        else:
            queue = "OUTBOUND"
            weights = np.array(P.FOLLOW_UP_OUTCOME_WEIGHTS if call_type == "回访" else P.CAMPAIGN_OUTCOME_WEIGHTS)
            oc = np.empty(n, dtype=np.int64)
            for b in np.unique(br).tolist():  # the follow-up reach rate differs by branch
                idx = np.flatnonzero(br == b)
                wb = weights.copy()
                if call_type == "回访":
                    wb[1:] = wb[1:] / wb[1:].sum() * (1 - self.br_reach[b])
                    wb[0] = self.br_reach[b]
                oc[idx] = _pick(rng, wb / wb.sum(), len(idx))
            if outcome_codes is not None:
                oc = np.asarray(outcome_codes, dtype=np.int64)
            outcome = np.array(calls_mod.OUTCOMES)[oc].tolist()
            answered = (oc == 0) | (oc == 4)
            abandoned = np.zeros(n, bool)
            answered_ts = offered + rng.integers(5, 25, n)
            talk = np.where(oc == 4, rng.integers(10, 40, n), talk)
            ended = np.where(answered, answered_ts + talk, offered + rng.integers(20, 60, n))
        cid = self._ids("call", n)
        off_s, ans_s, end_s = self.clock.call_ts(offered), self.clock.call_ts(answered_ts), self.clock.call_ts(ended)
        direction = "呼入" if inbound else "呼出"
        ans_l, ab_l = answered.tolist(), abandoned.tolist()
        codes = BR_CODES[br].tolist()
        lines = [f"CA{c:012d},{direction},{call_type},{queue},{ph},{po or ''},{cl or ''},{f'A{ag:04d}' if a else ''},"
                 f"{b},{o},{at if a else ''},{e},{'是' if ab else '否'},{w if a else ''},{oc_}"
                 for c, ph, po, cl, ag, a, b, o, at, e, ab, w, oc_ in
                 zip(cid.tolist(), phones, policy_nos, claim_nos, agent.tolist(), ans_l, codes, off_s, ans_s, end_s,
                     ab_l, wrap.tolist(), outcome)]
        self.buckets["call_logs"].add(offered // SECONDS_PER_DAY, offered, lines)
        return answered

    # ------------------------------------------------------------------------------- complaints
    def _complaint(self, rng, received: int, br: int, policy_no: str | None, claim_no: str | None, category: str,
                   cust: int, phone: str | None, *, duplicate: bool = False, channel: str | None = None,
                   escalated: bool = False) -> None:
        self.stats["complaint_tickets"] += 1
        year = int(self._year(np.array([received // SECONDS_PER_DAY]))[0])
        seq = int(self._serials(self.cnt.complaint_by_year, np.array([year]))[0])
        complaint_no = f"CP{BR_CODES[br]}{year % 100:02d}{seq:06d}"
        if channel is None:
            channel = P.COMPLAINT_CHANNELS[rng.choice(len(P.COMPLAINT_CHANNELS), p=self.direct_channel_p)]
        key = np.array([cust if cust >= 0 else 10**9 + seq + year * 10**7])
        if cust < 0 or rng.random() < P.THIRD_PARTY_COMPLAINANT_SHARE:
            key = key * 13 + 5 + rng.integers(0, 1 << 20)
            name, phone = nm.names(key, self.seed, salt=11)[0], nm.phones(key, self.seed, salt=12)[0]
        else:
            name = nm.names(key, self.seed)[0]
        handler = f"H{int(rng.integers(1, self.n_handlers + 1)):04d}"
        fmt = lambda s: self.clock.ts(np.array([s]))[0]  # noqa: E731

        state = {"complaint_no": complaint_no, "received_ts": fmt(received), "channel": channel,
                 "branch_code": str(BR_CODES[br]), "policy_no": policy_no, "claim_no": claim_no,
                 "category": category, "complainant": {"name": name, "phone": phone},
                 "is_accepted": False, "is_duplicate": duplicate, "is_withdrawn": False, "liability": "PENDING",
                 "extension_level": 0, "status": "OPEN", "closed_ts": None, "resolution": None,
                 "updated_ts": None, "actions": []}
        snapshots: list[tuple[int, str]] = []
        last = [received - 60]

        def act(ts: float, action: str, **changes) -> int:
            ts = max(int(ts), last[0] + 60)  # actions are at least a minute apart, in order
            last[0] = ts
            state.update(changes)
            if changes.get("status") == "CLOSED":
                state["closed_ts"] = fmt(ts)
            state["actions"] = state["actions"] + [{"ts": fmt(ts), "action": action, "handler_id": handler}]
            state["updated_ts"] = fmt(ts)
            snapshots.append((ts, json.dumps(state, ensure_ascii=False)))
            return ts

        act(received, "RECEIVED")
        accepted = duplicate or rng.random() < P.COMPLAINT_ACCEPT_SHARE
        bucket, handled_days, close_ts = 3, None, None
        if duplicate:
            t = act(received + _lognormal(rng, (2.0, 0.8), 1)[0] * 3600, "ACCEPTED", is_accepted=True)
            close_ts = act(t + rng.uniform(1, 72) * 3600, "CLOSED", status="CLOSED",
                           resolution=nm.RESOLUTIONS["DUPLICATE"][0])
            state_closed = close_ts
            bucket = -1
        elif not accepted:
            close_ts = act(received + rng.uniform(0.5, 5) * SECONDS_PER_DAY, "CLOSED", status="CLOSED",
                           resolution=nm.RESOLUTIONS["NOT_ACCEPTED"][0])
            state_closed = close_ts
        else:
            t = act(received + min(_lognormal(rng, (4.0, 0.8), 1)[0], 48) * 3600, "ACCEPTED", is_accepted=True)
            hd = P.LONG_COMPLAINT_HANDLING_DAYS if br == self.long_br else P.HANDLING_DAYS
            handled_days = float(np.clip(_lognormal(rng, hd, 1)[0], 0.3, P.HANDLING_DAYS_CAP))
            close_target = received + handled_days * SECONDS_PER_DAY
            investigate = t + _lognormal(rng, (1.0, 0.5), 1)[0] * SECONDS_PER_DAY
            withdrawn = rng.random() < P.COMPLAINT_WITHDRAW_SHARE
            if investigate < close_target - 3600:
                act(investigate, "INVESTIGATING")
            if withdrawn:
                close_ts = act(received + rng.uniform(0.3, 1.0) * handled_days * SECONDS_PER_DAY, "WITHDRAWN",
                               is_withdrawn=True, status="CLOSED", resolution=nm.RESOLUTIONS["WITHDRAWN"][0])
            else:
                level = 0
                if handled_days > 15 and rng.random() < P.EXTENSION_COMPLIANCE:
                    level = 1
                    act(received + rng.uniform(12, 14.9) * SECONDS_PER_DAY, "EXTENDED", extension_level=1)
                if handled_days > 30 and level == 1 and rng.random() < P.EXTENSION_COMPLIANCE:
                    act(received + rng.uniform(27, 29.9) * SECONDS_PER_DAY, "EXTENDED", extension_level=2)
                liabilities = tuple(P.LIABILITY_WEIGHTS)
                liability = liabilities[rng.choice(len(liabilities), p=tuple(P.LIABILITY_WEIGHTS.values()))]
                resolution = nm.RESOLUTIONS[liability][int(rng.integers(0, len(nm.RESOLUTIONS[liability])))]
                act(close_target - _lognormal(rng, (4.0, 0.5), 1)[0] * 3600, "RESOLVED", liability=liability,
                    resolution=resolution)
                close_ts = act(close_target, "CLOSED", status="CLOSED")
                handled_days = (close_ts - received) / SECONDS_PER_DAY
                bucket = 0 if handled_days <= P.WINBACK["fast_days"] else 1 if handled_days <= P.WINBACK["slow_days"] else 2
            state_closed = close_ts
        # One element per ticket per file: the day's last state.
        by_day: dict[int, tuple[int, str]] = {}
        for ts, text in snapshots:
            by_day[ts // SECONDS_PER_DAY] = (ts, text)
        days_sorted = sorted(by_day)
        self.buckets["complaints"].add(np.array(days_sorted), np.array([by_day[k][0] for k in days_sorted]),
                                       [by_day[k][1] for k in days_sorted])

        # The customer's complaint outcome drives the next renewal decision (planted win-back).
        if cust >= 0 and bucket >= 0:
            close_day = state_closed // SECONDS_PER_DAY
            if close_day >= self.cust_cmp_close.arr[cust]:
                self.cust_cmp_close.arr[cust] = close_day
                self.cust_cmp_bucket.arr[cust] = bucket
        if channel == "HOTLINE":
            self._calls(rng, "投诉", np.array([received - int(rng.integers(300, 900))]), np.array([br]),
                        [phone or ""], [policy_no], [claim_no], always_answered=True)
        if bucket in (0, 1, 2) and rng.random() < P.SURVEY_RESPONSE_RATE:
            shift = P.COMPLAINT_SAT_SHIFT[("fast", "mid", "slow")[bucket]]
            mean_shift = 0.105  # the handling-time mixture's mean shift, so the stage averages ~0.60
            self._surveys(rng, "COMPLAINT", np.array([state_closed]),
                          np.array([P.logit(P.STAGE_TARGETS["COMPLAINT"]) - mean_shift + shift]),
                          [policy_no], [claim_no], [complaint_no], np.array([max(cust, 0)]),
                          reason=np.array(["UNRESOLVED" if bucket == 2 else None], dtype=object))
        if not duplicate and rng.random() < P.COMPLAINT_DUPLICATE_SHARE:
            self._complaint(rng, received + int(rng.uniform(1, 5) * SECONDS_PER_DAY), br, policy_no, claim_no,
                            category, cust, phone, duplicate=True, channel=channel)
        # The follow-up case of an accepted complaint: a call-back on its policy and claim.
        if accepted and not duplicate and cust > 0:
            self._followup_case(self._keyed_rng(S_FOLLOWUP, 1, year, seq), "COMPLAINT", np.array([received]),
                                np.array([cust]), [policy_no], [claim_no])
        # Escalation (越级投诉): after the company's answer the complainant goes to the regulator.
        if not (duplicate or escalated) and channel != P.REGULATOR_CHANNEL and cust > 0:
            erng = self._keyed_rng(S_ESCALATIONS, year, seq)
            disappointed = (not accepted or state["liability"] == "NOT_AT_FAULT"
                            or (state_closed - received) / SECONDS_PER_DAY > P.WINBACK["slow_days"])
            if erng.random() < P.ESCALATION_PROBABILITY["disappointed" if disappointed else "other"]:
                when = state_closed + int(_lognormal(erng, P.ESCALATION_DELAY_DAYS, 1)[0] * SECONDS_PER_DAY)
                self._complaint(erng, when, br, policy_no, claim_no, category, cust, phone,
                                channel=P.REGULATOR_CHANNEL, escalated=True)

    # ------------------------------------------------------------------------- daily activity
    def _daily_activity(self, d: int, inforce: np.ndarray) -> None:
        """Traffic not tied to a claim: inquiries, complaint calls, care and sales calls,
        complaints about sales and service."""
        rng = self._rng(d, S_CALLS)
        book = self.book
        n_in = len(inforce)
        weekday = self.clock.date_of(d).weekday()
        factor = P.MONDAY_FACTOR if weekday == 0 else 1.0
        specs = (("咨询", P.INQUIRIES_PER_POLICY_YEAR / 365 * factor, False),
                 ("投诉", self.extra_complaint_call_rate * factor, False),
                 ("关怀", P.CARE_CALLS_PER_POLICY_YEAR / 365, True), ("营销", P.SALES_CALLS_PER_POLICY_YEAR / 365, True))
        for call_type, rate, outbound in specs:
            # call-backs of unresolved calls (_repeat_calls) are part of the calibrated volume
            rate = rate * (1.0 - P.REPEAT_CALL_PROBABILITY.get(call_type, 0.0))
            k = rng.poisson(rate * n_in) if n_in else 0
            if k == 0:
                continue
            pos = inforce[rng.integers(0, n_in, k)]
            br = book["br"][pos].astype(np.int64)
            cust = book["cust"][pos]
            nos = self.policy_nos(br, book["yy"][pos], book["yseq"][pos])
            phones = nm.phones(cust, self.seed)
            if not outbound:
                unknown = rng.random(k) < 0.3  # callers who do not give a policy number
                nos = [None if u else x for x, u in zip(nos, unknown.tolist())]
                when = d * SECONDS_PER_DAY + self._tod(rng, k)
            else:
                when = d * SECONDS_PER_DAY + rng.choice(P.OUTBOUND_HOURS, k) * 3600 + rng.integers(0, 3600, k)
            answered = self._calls(rng, call_type, when, br, phones, nos, [None] * k)
            if call_type in P.REPEAT_CALL_PROBABILITY:
                self._repeat_calls(d, call_type, np.asarray(when, dtype=np.int64), answered, br, phones, nos)

        krng = self._rng(d, S_COMPLAINTS + 100)
        k = krng.poisson(self.non_claim_complaint_rate * n_in) if n_in else 0
        for p_ in inforce[krng.integers(0, n_in, k)].tolist() if k else []:
            br = int(book["br"][p_])
            no = self.policy_nos(np.array([br]), book["yy"][p_: p_ + 1], book["yseq"][p_: p_ + 1])[0]
            cust = int(book["cust"][p_])
            cat = P.NON_CLAIM_CATEGORIES[krng.choice(3, p=P.NON_CLAIM_CATEGORY_WEIGHTS)]
            self._complaint(krng, d * SECONDS_PER_DAY + int(self._tod(krng, 1)[0]), br, no, None, cat, cust,
                            nm.phones(np.array([cust]), self.seed)[0])

    # ----------------------------------------------------------------------------------- audits
    def _audits_for_month(self, d: int) -> None:
        first = self.clock.date_of(d)
        month_end = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        last = min(d + (month_end - first).days, self.last_day)
        rng = self._rng(d, S_AUDITS)
        for b, branch in enumerate(BRANCHES):
            # Scaled by the share of the month inside the range, so partial months stay fair.
            k = rng.poisson(P.AUDITS_PER_BRANCH_MONTH * (last - d + 1) / month_end.day)
            for _ in range(k):
                day = int(rng.integers(d, last + 1))
                scenario = P.AUDIT_SCENARIOS[rng.choice(3, p=P.AUDIT_SCENARIO_WEIGHTS)]
                sla = branch.surveyor_sla_minutes
                arrival = None
                if scenario == "SIMULATED_CLAIM":
                    base = P.ARRIVAL_MINUTES_URBAN if rng.random() < branch.urban_share else P.ARRIVAL_MINUTES_RURAL
                    arrival = int(min(_lognormal(rng, base, 1)[0] * self.arrival_mult[b], 1440))
                competence = None if scenario == "ANONYMOUS_CALL" else round(float(rng.beta(*P.AUDIT_COMPETENCE_BETA)) * 100, 1)
                convenience = round(float(rng.beta(*P.AUDIT_CONVENIENCE_BETA)) * 100, 1)
                findings = []
                if arrival is not None and arrival > sla:
                    findings.append(nm.AUDIT_FINDINGS_LATE.format(minutes=arrival - sla))
                if competence is not None and competence < P.AUDIT_PASS_ASSESSMENT:
                    findings.append(nm.AUDIT_FINDINGS_ASSESS)
                if convenience < P.AUDIT_PASS_CONVENIENCE:
                    findings.append(nm.AUDIT_FINDINGS_PAY)
                passed = not findings
                self.cnt.audit += 1
                self.audit_rows.append((day, [
                    f"AU{self.cnt.audit:08d}", self.clock.date_of(day), branch.code, f"QC{int(rng.integers(1, 60)):03d}",
                    scenario, arrival, sla, competence, convenience, "Y" if passed else "N",
                    "；".join(findings) if findings else (nm.AUDIT_FINDINGS_OK if rng.random() < 0.5 else None)]))

    def _write_audits(self, d: int) -> None:
        month = self.clock.date_of(d)
        rows = [r for _, r in sorted(self.audit_rows, key=lambda x: (x[0], x[1][0]))]
        self.audit_rows = []
        folder = self.out_dir / audits_mod.CONTRACT.folder
        title = f"都邦财险 模拟赔案/暗访检查记录 {month.year}年{month.month:02d}月"
        write_xlsx(folder / f"{month.year}-{month.month:02d}.xlsx", title, list(audits_mod.CONTRACT.column_names),
                   rows, sheet_title="检查记录", date_columns=(1,))
        self.rows["audits"] += len(rows)
        self.files["audits"] += 1

    # -------------------------------------------------------------------------------- writing
    def _flush(self, d: int) -> None:
        iso = self.clock.date_of(d).isoformat()
        for source in ("policies", "claim_events", "call_logs", "surveys", "complaints"):
            contract = CONTRACTS[source]
            rows = self.buckets[source].pop(d)
            path = self.out_dir / contract.folder / f"{iso}{contract.file_suffix}"
            if source == "policies" and d == 0 and self._day0_policies_started:
                write_csv(path, None, rows, contract.encoding, append=True)  # after the opening book
            elif contract.file_format == "csv":
                header = CALL_HEADER if source == "call_logs" else list(contract.column_names)
                write_csv(path, header, rows, contract.encoding)
            elif contract.file_format == "jsonl":
                write_jsonl(path, rows)
            else:
                write_json_array(path, rows)
            self.rows[source] += len(rows)
            self.files[source] += 1

    def _prepare_out_dir(self) -> None:
        """Remove files a previous run left in the source folders, so the folder holds exactly
        this data set (stale days would otherwise be ingested with it)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for source in SOURCES:
            contract = CONTRACTS[source]
            folder = self.out_dir / contract.folder
            folder.mkdir(exist_ok=True)
            for old in sorted(folder.glob(f"*{contract.file_suffix}")):
                old.unlink()
        (self.out_dir / "_truth.json").unlink(missing_ok=True)

    def truth(self) -> dict:
        end = self.start + timedelta(days=self.days - 1)
        return {
            "seed": self.seed, "scale": self.scale, "start": self.start.isoformat(), "end": end.isoformat(),
            "slow_survey_branch": P.SLOW_SURVEY_BRANCH,
            "long_complaint_branch": P.LONG_COMPLAINT_BRANCH,
            "winback_fast_vs_slow": {k: P.WINBACK[k] for k in
                                     ("fast_days", "slow_days", "fast_renewal_rate", "slow_renewal_rate")},
            "high_risk_cluster": {**P.HIGH_RISK_CLUSTER, "baseline_claim_frequency": P.LINES["MOTOR"][3]},
            "neglected_followup_branch": P.NEGLECTED_FOLLOWUP_BRANCH,
            "repeat_call_queue": P.REPEAT_CALL_QUEUE,
            # the size of each planted effect, as the generator draws it
            "effects": {
                "slow_survey": {"branch": P.SLOW_SURVEY_BRANCH,
                                "arrival_time_multiplier": P.SLOW_SURVEY_ARRIVAL_MULTIPLIER,
                                "survey_stage_satisfied_share": P.SLOW_SURVEY_SATISFACTION,
                                "company_survey_stage_target": P.STAGE_TARGETS["SURVEY"]},
                "long_complaint": {"branch": P.LONG_COMPLAINT_BRANCH,
                                   "handling_days_median": P.LONG_COMPLAINT_HANDLING_DAYS[0],
                                   "handling_days_sigma": P.LONG_COMPLAINT_HANDLING_DAYS[1],
                                   "company_handling_days_median": P.HANDLING_DAYS[0],
                                   "company_handling_days_sigma": P.HANDLING_DAYS[1]},
                "winback": {"fast_days": P.WINBACK["fast_days"], "slow_days": P.WINBACK["slow_days"],
                            "fast_renewal_rate": P.WINBACK["fast_renewal_rate"],
                            "mid_renewal_rate": P.WINBACK["mid_renewal_rate"],
                            "slow_renewal_rate": P.WINBACK["slow_renewal_rate"],
                            "fast_minus_slow": round(P.WINBACK["fast_renewal_rate"] - P.WINBACK["slow_renewal_rate"], 4),
                            "window_days": P.WINBACK_WINDOW_DAYS},
                "high_risk_cluster": {"business_source": P.HIGH_RISK_CLUSTER["business_source"],
                                      "line_of_business": P.HIGH_RISK_CLUSTER["line_of_business"],
                                      "claim_frequency_multiplier": P.HIGH_RISK_CLUSTER["claim_frequency_multiplier"],
                                      "baseline_claim_frequency": P.LINES["MOTOR"][3]},
                "neglected_followup": {"branch": P.NEGLECTED_FOLLOWUP_BRANCH,
                                       "in_time_probability": P.NEGLECTED_FOLLOWUP_IN_TIME_PROBABILITY,
                                       "company_in_time_probability": P.FOLLOWUP_IN_TIME_PROBABILITY,
                                       "never_called_share_of_the_rest": P.FOLLOWUP_NEVER_SHARE,
                                       "detractor_max_score": P.DETRACTOR_MAX_SCORE,
                                       "deadline_hours": {k: v[0] for k, v in P.FOLLOWUP_DEADLINE.items()},
                                       "deadline_clock": {k: v[1] for k, v in P.FOLLOWUP_DEADLINE.items()}},
                "repeat_calls": {"queue": P.REPEAT_CALL_QUEUE,
                                 "call_back_probability": P.REPEAT_CALL_PROBABILITY["咨询"],
                                 "window_hours": P.REPEAT_CALL_WINDOW_HOURS},
                "followup_recovery": dict(P.FOLLOWUP_RECOVERY),
                "escalation": {"probability": dict(P.ESCALATION_PROBABILITY),
                               "delay_days_median": P.ESCALATION_DELAY_DAYS[0],
                               "share_of_regulator_routed": P.ESCALATED_SHARE_OF_REGULATOR},
            },
            # the customers' own words: the top topic of the slow-survey branch's SURVEY stage
            "planted_topic": dict(P.PLANTED_TOPIC),
            # the strongest driver of renewal and of the later (PAYMENT-stage) NPS, and every stage's size
            "planted_key_driver": {
                "stage": P.PLANTED_KEY_DRIVER,
                "renewal_logit_per_satisfied_stage": dict(P.KEY_DRIVER_RENEWAL_LOGIT),
                "later_nps_points_per_satisfied_stage": dict(P.KEY_DRIVER_LATER_NPS_POINTS),
                "later_score": "nps of the PAYMENT-stage response",
            },
            "planted_effects": True,
            "complaints_per_10k_policy_years": self.stats["complaints_per_10k_policy_years"],
            "regulator_routed_share": round(float(self.complaint_channel_p[
                P.COMPLAINT_CHANNELS.index(P.REGULATOR_CHANNEL)]), 6),
        }

    def null_truth(self) -> dict:
        """The truth file of a data set drawn without planted effects: nothing to find."""
        truth = self.truth()
        truth.update({"planted_effects": False, "effects": {}, "planted_topic": None, "planted_key_driver": None,
                      "slow_survey_branch": None, "long_complaint_branch": None, "winback_fast_vs_slow": None,
                      "high_risk_cluster": None})
        return truth

    # ------------------------------------------------------------------------------------ run
    def run(self) -> dict:
        t0 = time.perf_counter()
        self._prepare_out_dir()
        self._opening_book()
        for d in range(self.days):
            rng = self._rng(d, S_POLICIES)
            book = self.book
            self._renewals(d, rng)
            inforce = np.flatnonzero((book["start"] <= d) & (book["end"] >= d) & (book["cancel"] > d))
            self.stats["policy_days_in_force"] += len(inforce)
            n_new = rng.poisson(self.per_day * P.NEW_BUSINESS_SHARE)
            if n_new:
                attrs = self._draw_new_business(rng, n_new, inforce)
                start = d + rng.integers(P.START_DELAY_DAYS[0], P.START_DELAY_DAYS[1] + 1, n_new)
                self._issue(rng, d, np.full(n_new, d), start, attrs, None)
            pids = self.claim_queue.pop(d, None)
            if pids:
                self._claims(d, np.concatenate(pids), self._rng(d, S_CLAIMS))
            self._daily_activity(d, inforce)
            today = self.clock.date_of(d)
            if d == 0 or today.day == 1:
                self._audits_for_month(d)
            if d == self.last_day or (today + timedelta(days=1)).day == 1:
                self._write_audits(d)
            self._flush(d)
            if d % 7 == 6:
                keep = (book["end"] >= d) & (book["cancel"] >= d)
                np.subtract.at(self.cust_active.arr, book["cust"][~keep], 1)
                book.keep(keep)
            if self.progress and (d + 1) % 30 == 0 or self.progress and d == self.last_day:
                elapsed = time.perf_counter() - t0
                total = sum(self.rows.values())
                peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                eprint(f"[generate] day {d + 1}/{self.days} ({today.isoformat()}): {total:,} rows, "
                       f"{total / max(elapsed, 1e-9):,.0f} rows/s, book {len(book):,} policies, "
                       f"peak RSS {peak_mb:,.0f} MB, {elapsed:.1f} s")
        truth = self.truth() if self.planted else self.null_truth()
        (self.out_dir / "_truth.json").write_text(json.dumps(truth, ensure_ascii=False, indent=2) + "\n",
                                                  encoding="utf-8")
        elapsed = time.perf_counter() - t0
        return {"out_dir": str(self.out_dir), "files": dict(self.files), "rows": dict(self.rows), "truth": truth,
                "stats": dict(self.stats), "elapsed_seconds": round(elapsed, 3)}


def generate(out_dir: Path, *, scale: float, start: date, days: int, seed: int, defects: bool = False,
             progress: bool = True, complaints_per_10k: float | None = None, planted_effects: bool = True) -> dict:
    """Write ``out_dir/<folder>/<file>`` for all six sources and ``out_dir/_truth.json``.

    Returns a summary: ``files`` and ``rows`` per source, ``truth``, ``stats`` and
    ``elapsed_seconds``. Files a previous run left in the six source folders are removed first.
    ``defects=True`` also writes the bad-input catalogue of ``generate/defects.py`` (one file per
    defect, on days after the clean range) and its manifest ``_defects.json``.
    ``complaints_per_10k`` overrides the complaint rate (all complaints per 10k policy-years;
    default ``params.COMPLAINTS_PER_10K_POLICY_YEARS``): small test books need more tickets for
    complaint KPIs to be measurable. ``planted_effects=False`` draws the same kind of book with no
    planted effect at all (``_truth.json`` says so): null data for the control limits.
    """
    (Path(out_dir) / MANIFEST_NAME).unlink(missing_ok=True)  # a stale catalogue would describe old files
    gen = _Generator(Path(out_dir), scale=scale, start=start, days=days, seed=seed, progress=progress,
                     complaints_per_10k=P.COMPLAINTS_PER_10K_POLICY_YEARS if complaints_per_10k is None
                     else complaints_per_10k, planted_effects=planted_effects)
    summary = gen.run()
    if defects:
        # The bad-input catalogue: its own days after the clean range, see defects.py.
        catalogue = write_defects(Path(out_dir), start + timedelta(days=days - 1))
        summary["defects"] = len(catalogue)
        if progress:
            eprint(f"[generate] wrote {len(catalogue)} defective files after {summary['truth']['end']} "
                   f"(manifest {Path(out_dir) / MANIFEST_NAME})")
    return summary


def print_summary(summary: dict) -> None:
    """A short table on stdout: files and rows per source, then the planted effects."""
    truth = summary["truth"]
    print(f"Generated {truth['start']} .. {truth['end']} (scale {truth['scale']}, seed {truth['seed']}) "
          f"into {summary['out_dir']} in {summary['elapsed_seconds']:.1f} s")
    print(f"  {'source':<14}{'files':>8}{'rows':>14}")
    for source in SOURCES:
        print(f"  {source:<14}{summary['files'][source]:>8,}{summary['rows'][source]:>14,}")
    print(f"  {'total':<14}{sum(summary['files'].values()):>8,}{sum(summary['rows'].values()):>14,}")
    if not truth["planted_effects"]:
        print("  no planted effects (null data)")
        return
    print(f"  planted: slow survey branch {truth['slow_survey_branch']}, long complaint branch "
          f"{truth['long_complaint_branch']}, high-risk cluster {truth['high_risk_cluster']['business_source']} x "
          f"{truth['high_risk_cluster']['line_of_business']}")
    print(f"           neglected follow-up branch {truth['neglected_followup_branch']}, repeat-call queue "
          f"{truth['repeat_call_queue']}, topic {truth['planted_topic']['topic']} at "
          f"{truth['planted_topic']['branch']} {truth['planted_topic']['stage']}, key driver "
          f"{truth['planted_key_driver']['stage']}")
