"""Follow-up cases, repeat contacts and the regulator's complaint indicators recomputed in plain
pandas from the raw tables, independently of the dbt SQL.

The rules are restated from docs/definitions.md (#fct_followup_case, #followup-clocks,
#mart_contact_resolution, #mart_complaint_regulatory), not translated from the models. The
working-hour clock walks the days with the chinese-calendar package directly, not the warehouse's
calendar seed; repeat callers are matched on the raw phone number (the warehouse only ever sees its
salted hash).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

from kpi_reference import CALENDAR_LAST_DAY, complaint_facts, latest_version

OPEN_HOUR, CLOSE_HOUR = 9, 18
DETRACTOR_MAX_SCORE = 2
RULES = {"DETRACTOR": (24.0, "working"), "COMPLAINT": (48.0, "calendar")}
LEVEL_2_AFTER_HOURS = 24.0
REPEAT_WINDOW_HOURS = 72.0
ESCALATION_WINDOW_DAYS = 90
CALL_TYPES = {"报案": "CLAIM_REPORT", "咨询": "INQUIRY", "投诉": "COMPLAINT"}
REGULATOR_CHANNEL = "REGULATOR_12378"


@lru_cache(maxsize=None)
def is_working_day(day: date) -> bool:
    import chinese_calendar

    if day > CALENDAR_LAST_DAY:
        return day.weekday() < 5
    return chinese_calendar.is_workday(day)


def add_working_hours(start: datetime, hours: float) -> datetime:
    """The moment `hours` of working time (09:00-18:00 on working days) after `start`, walking
    the calendar day by day. A deadline that ends exactly at a closing time stays on that day."""
    remaining = hours
    day = start.date()
    moment = start
    while True:
        if is_working_day(day):
            opening = datetime.combine(day, time(OPEN_HOUR))
            closing = datetime.combine(day, time(CLOSE_HOUR))
            current = max(moment, opening)
            if current < closing:
                available = (closing - current).total_seconds() / 3600
                if remaining <= available:
                    return current + timedelta(hours=remaining)
                remaining -= available
        day += timedelta(days=1)
        moment = datetime.combine(day, time(0))


def _deadline(opened: pd.Timestamp, reason: str, extra_hours: float = 0.0) -> pd.Timestamp:
    hours, clock = RULES[reason]
    if clock == "working":
        return pd.Timestamp(add_working_hours(opened.to_pydatetime(), hours + extra_hours))
    return opened + pd.Timedelta(hours=hours + extra_hours)


def followup_cases(surveys: pd.DataFrame, complaints: pd.DataFrame, calls: pd.DataFrame,
                   as_of_date: date) -> pd.DataFrame:
    """One row per case: case_key, reason, opened_ts, due_ts, closed_ts, is_overdue, escalation_level."""
    s = latest_version(surveys, "response_id")
    det = s[s["score"] <= DETRACTOR_MAX_SCORE]
    detractors = pd.DataFrame({
        "case_key": "DETRACTOR:" + det["response_id"], "reason": "DETRACTOR",
        "opened_ts": pd.to_datetime(det["responded_ts"]), "policy_no": det["policy_no"],
        "claim_no": det["claim_no"], "complaint_closed_ts": pd.NaT})
    c = complaint_facts(complaints)
    c = c[c["is_accepted"] & ~c["is_duplicate"]]
    complaint_cases = pd.DataFrame({
        "case_key": "COMPLAINT:" + c["complaint_no"], "reason": "COMPLAINT",
        "opened_ts": pd.to_datetime(c["received_ts"]), "policy_no": c["policy_no"], "claim_no": c["claim_no"],
        "complaint_closed_ts": pd.to_datetime(c["closed_ts"])})
    cases = pd.concat([detractors, complaint_cases], ignore_index=True)

    k = latest_version(calls, "call_id")
    k = k[(k["call_type"] == "回访") & (k["outcome"] == "接通")].copy()
    k["reached_ts"] = pd.to_datetime(k["answered_ts"]).fillna(pd.to_datetime(k["offered_ts"]))
    matches = []
    for key in ("policy_no", "claim_no"):
        left = cases.loc[cases[key].notna(), ["case_key", key, "opened_ts"]]
        m = left.merge(k.loc[k[key].notna(), [key, "reached_ts"]], on=key)
        matches.append(m[m["reached_ts"] >= m["opened_ts"]][["case_key", "reached_ts"]])
    first_call = pd.concat(matches).groupby("case_key")["reached_ts"].min()
    cases["call_ts"] = cases["case_key"].map(first_call)
    by_call = cases["call_ts"].notna() & (cases["complaint_closed_ts"].isna()
                                          | (cases["call_ts"] <= cases["complaint_closed_ts"]))
    cases["closed_ts"] = cases["call_ts"].where(by_call, cases["complaint_closed_ts"])

    cases["due_ts"] = [_deadline(o, r) for o, r in zip(cases["opened_ts"], cases["reason"])]
    level_2 = pd.Series([_deadline(o, r, LEVEL_2_AFTER_HOURS) for o, r in zip(cases["opened_ts"], cases["reason"])],
                        index=cases.index)
    as_of_ts = pd.Timestamp(as_of_date) + pd.Timedelta(days=1)
    open_until = cases["closed_ts"].fillna(as_of_ts)
    late = cases["closed_ts"].isna() | (cases["closed_ts"] > cases["due_ts"])
    cases["is_overdue"] = late & (cases["due_ts"] < as_of_ts)
    cases["escalation_level"] = np.where(level_2 < open_until, 2, np.where(cases["due_ts"] < open_until, 1, 0))
    return cases


def repeat_contacts(calls: pd.DataFrame) -> pd.DataFrame:
    """month x branch x queue x call type: contacts, repeat_contacts, repeat_contacts_caller_only."""
    k = latest_version(calls, "call_id")
    k = k[(k["direction"] == "呼入") & k["answered_ts"].notna()].copy()
    k["offered_ts"] = pd.to_datetime(k["offered_ts"])
    k["call_type"] = k["call_type"].map(CALL_TYPES)
    k = k.sort_values(["offered_ts", "call_id"])
    window = pd.Timedelta(hours=REPEAT_WINDOW_HOURS)
    flags = {}
    for key in ("policy_no", "phone"):
        has = k[k[key].notna() & (k[key] != "")]
        previous = has.groupby(["call_type", key])["offered_ts"].shift(1)
        flags[key] = ((has["offered_ts"] - previous) <= window).reindex(k.index, fill_value=False)
    k["repeat"] = flags["policy_no"] | flags["phone"]
    k["caller_only"] = flags["phone"] & ~flags["policy_no"]
    k["month"] = k["offered_ts"].dt.to_period("M").dt.start_time.dt.date
    g = k.groupby(["month", "branch_code", "queue", "call_type"]).agg(
        contacts=("call_id", "size"), repeat_contacts=("repeat", "sum"), repeat_contacts_caller_only=("caller_only", "sum"))
    return g.reset_index()


def quarterly_complaint_index(complaints: pd.DataFrame, policies: pd.DataFrame, as_of_date: date) -> pd.DataFrame:
    """branch x quarter: received, regulator_routed, written_premium, policies_in_force (on the
    quarter's last day, or the last day of the as-of month if the data ends inside the quarter),
    complaint_index and escalated."""
    c = complaint_facts(complaints).copy()
    received = pd.to_datetime(c["received_ts"])
    c["quarter"] = received.dt.to_period("Q").dt.start_time.dt.date
    c["routed"] = c["channel"] == REGULATOR_CHANNEL
    p = latest_version(policies, "policy_no").copy()
    p["quarter"] = pd.to_datetime(p["issue_date"]).dt.to_period("Q").dt.start_time.dt.date
    vol = c.groupby(["branch_code", "quarter"]).agg(received=("complaint_no", "size"), regulator_routed=("routed", "sum"))
    prem = p.groupby(["branch_code", "quarter"])["premium"].sum().astype(float).rename("written_premium")
    quarters = sorted(set(c["quarter"]))
    # every branch in every quarter, with zeros where a branch had neither a complaint nor a new
    # policy (the last quarter of the data may be a few days long)
    grid = pd.MultiIndex.from_product([sorted(set(p["branch_code"]) | set(c["branch_code"])), quarters],
                                      names=["branch_code", "quarter"])
    joined = vol.join(prem, how="outer")
    out = joined.reindex(joined.index.union(grid)).fillna(0).reset_index()
    in_force = []
    active = p[p["status"] != "CANCELLED"]
    for q in quarters:
        end = min((pd.Timestamp(q) + pd.offsets.QuarterEnd(0)).date(),
                  (pd.Timestamp(as_of_date) + pd.offsets.MonthEnd(0)).date())
        alive = active[(pd.to_datetime(active["start_date"]).dt.date <= end) & (pd.to_datetime(active["end_date"]).dt.date >= end)]
        counts = alive.groupby("branch_code").size()
        in_force += [{"branch_code": b, "quarter": q, "policies_in_force": int(n)} for b, n in counts.items()]
    out = out.merge(pd.DataFrame(in_force), on=["branch_code", "quarter"], how="left")
    out = out[out["quarter"].isin(quarters)]
    totals = out.groupby("quarter")[["received", "written_premium"]].transform("sum")
    share_c = out["received"] / totals["received"]
    share_p = out["written_premium"] / totals["written_premium"]
    out["complaint_index"] = (share_c / share_p).where((totals["received"] > 0) & (out["written_premium"] > 0))

    # escalation: a regulator-routed ticket whose customer complained through another channel in the 90 days before
    customers = latest_version(policies, "policy_no").set_index("policy_no")["customer_id"]
    c["customer"] = c["policy_no"].map(customers)
    routed = c[c["routed"] & c["customer"].notna()]
    earlier = c[~c["routed"] & c["customer"].notna()][["customer", "received_ts"]]
    pairs = routed[["complaint_no", "branch_code", "quarter", "customer", "received_ts"]].merge(
        earlier, on="customer", suffixes=("", "_earlier"))
    gap = pd.to_datetime(pairs["received_ts"]) - pd.to_datetime(pairs["received_ts_earlier"])
    hit = pairs[(gap > pd.Timedelta(0)) & (gap <= pd.Timedelta(days=ESCALATION_WINDOW_DAYS))]
    esc = hit.drop_duplicates("complaint_no").groupby(["branch_code", "quarter"]).size().rename("escalated")
    out = out.merge(esc.reset_index(), on=["branch_code", "quarter"], how="left")
    out["escalated"] = out["escalated"].fillna(0).astype(int)
    return out
