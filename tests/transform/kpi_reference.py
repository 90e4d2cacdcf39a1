"""Headline KPIs recomputed in plain pandas/numpy from the raw tables, independently of the dbt SQL.

Each function takes raw DataFrames (as ingest loaded them: Chinese CTI codes, every file's rows)
and returns a DataFrame keyed like the mart it checks. The rules are re-stated here from
docs/definitions.md (and the statutes it cites), not translated from the models; legal deadlines
use the chinese-calendar package directly, not the warehouse's calendar seed.
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from functools import lru_cache

import numpy as np
import pandas as pd

DEADLINE_DAYS = {0: 15, 1: 30, 2: 60}
VALID_LIABILITIES = {"AT_FAULT", "PARTIAL"}
CALENDAR_LAST_DAY = date(2026, 12, 31)  # the last year chinese-calendar knows


@lru_cache(maxsize=None)
def legal_period_end(event_day: date, days: int) -> date:
    """Civil Code arts. 201 and 203: N calendar days from the day after the event; a last day that
    is not a working day (weekend or public holiday, make-up working days excepted) moves to the
    next working day."""
    import chinese_calendar

    last = event_day + timedelta(days=days)
    while last <= CALENDAR_LAST_DAY and not chinese_calendar.is_workday(last):
        last += timedelta(days=1)
    return last


def _period_end_series(days: pd.Series, offsets) -> pd.Series:
    """legal_period_end over a series of dates (NaT stays NaT)."""
    offsets = offsets if isinstance(offsets, pd.Series) else pd.Series(offsets, index=days.index)
    out = [pd.NaT if pd.isna(d) else pd.Timestamp(legal_period_end(pd.Timestamp(d).date(), int(n)))
           for d, n in zip(days, offsets)]
    return pd.Series(out, index=days.index, dtype="datetime64[ns]")


def latest_version(df: pd.DataFrame, key: str) -> pd.DataFrame:
    """A key seen again in a later file is the same record: keep the last (file date, line)."""
    ordered = df.sort_values(["_partition", "_source_line"])
    return ordered.drop_duplicates(key, keep="last")


def month_of(ts: pd.Series) -> pd.Series:
    return pd.to_datetime(ts).dt.to_period("M").dt.start_time.dt.date


def wilson(x: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = x / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    denom = 1 + z * z / n
    return max(0.0, (centre - half) / denom), min(1.0, (centre + half) / denom)


def claim_branches(events: pd.DataFrame, policies: pd.DataFrame) -> pd.DataFrame:
    """claim_no -> branch_code of the claim's policy (policy on the first event)."""
    events = latest_version(events, "event_id").sort_values("event_ts")
    first = events.drop_duplicates("claim_no", keep="first")[["claim_no", "policy_no"]]
    pol = latest_version(policies, "policy_no")[["policy_no", "branch_code"]]
    out = first.merge(pol, on="policy_no", how="left")
    out["branch_code"] = out["branch_code"].fillna(out["claim_no"].str[2:4])
    return out[["claim_no", "branch_code"]]


def stage_csat(surveys: pd.DataFrame, events: pd.DataFrame, policies: pd.DataFrame,
               complaints: pd.DataFrame) -> pd.DataFrame:
    """branch x stage x month: responses, satisfied, csat, wilson_low, wilson_high."""
    s = latest_version(surveys, "response_id").copy()
    claims = claim_branches(events, policies).rename(columns={"branch_code": "claim_branch"})
    comp = latest_version(complaints, "complaint_no")[["complaint_no", "branch_code"]].rename(
        columns={"branch_code": "complaint_branch"})
    s = s.merge(claims, on="claim_no", how="left").merge(comp, on="complaint_no", how="left")
    s["branch_code"] = np.where(s["stage"] == "COMPLAINT", s["complaint_branch"], s["claim_branch"])
    s["month"] = month_of(s["responded_ts"])
    s["sat"] = s["score"] >= 4
    g = s.groupby(["branch_code", "stage", "month"]).agg(responses=("sat", "size"), satisfied=("sat", "sum"))
    g = g.reset_index()
    g["csat"] = g["satisfied"] / g["responses"]
    bounds = [wilson(int(x), int(n)) for x, n in zip(g["satisfied"], g["responses"])]
    g["wilson_low"] = [b[0] for b in bounds]
    g["wilson_high"] = [b[1] for b in bounds]
    return g


def complaint_facts(complaints: pd.DataFrame) -> pd.DataFrame:
    """One row per complaint (latest state by updated_ts) with validity, handling and deadline."""
    c = complaints.sort_values(["updated_ts", "_partition", "_source_line"]).drop_duplicates(
        "complaint_no", keep="last").copy()
    c["closed_ts"] = c["closed_ts"].where(c["closed_ts"].notna(),
                                          c["updated_ts"].where(c["status"] == "CLOSED"))
    c["valid"] = (c["is_accepted"] & ~c["is_duplicate"] & ~c["is_withdrawn"]
                  & c["liability"].isin(VALID_LIABILITIES))
    received = pd.to_datetime(c["received_ts"])
    closed = pd.to_datetime(c["closed_ts"])
    c["handling_days"] = (closed - received).dt.total_seconds() / 86400
    deadline = _period_end_series(received.dt.normalize(), c["extension_level"].map(DEADLINE_DAYS))
    c["on_time"] = closed.dt.normalize() <= deadline
    c["received_month"] = month_of(received)
    c["closed_month"] = month_of(closed.fillna(pd.Timestamp("1900-01-01")))
    c.loc[closed.isna(), "closed_month"] = None
    return c


def complaint_volumes(complaints: pd.DataFrame) -> pd.DataFrame:
    c = complaint_facts(complaints)
    g = c.groupby(["branch_code", "received_month"]).agg(
        received=("complaint_no", "size"), accepted=("is_accepted", "sum"), valid=("valid", "sum"))
    g = g.reset_index().rename(columns={"received_month": "month"})
    g["valid_rate"] = g["valid"] / g["received"]
    return g


def complaint_handling(complaints: pd.DataFrame) -> pd.DataFrame:
    c = complaint_facts(complaints)
    c = c[c["closed_month"].notna()]
    rows = []
    for (branch, month), grp in c.groupby(["branch_code", "closed_month"]):
        days = grp["handling_days"].to_numpy()
        rows.append({"branch_code": branch, "month": month, "closed": len(grp),
                     "handling_days_p50": float(np.percentile(days, 50)),
                     "handling_days_p90": float(np.percentile(days, 90)),
                     "within_deadline_share": float(grp["on_time"].mean())})
    return pd.DataFrame(rows)


def claim_cycle(events: pd.DataFrame, policies: pd.DataFrame) -> pd.DataFrame:
    """branch x report month: claims_reported, paid_within_10d_share (first payment on or before the
    last day of the 10 days after agreement, Insurance Law art. 23)."""
    e = latest_version(events, "event_id")
    first = e.pivot_table(index="claim_no", columns="event_type", values="event_ts", aggfunc="min")
    first = first.reset_index().merge(claim_branches(events, policies), on="claim_no")
    first["month"] = month_of(first["REPORTED"])
    both = first["AGREED"].notna() & first["PAID"].notna()
    due = _period_end_series(pd.to_datetime(first["AGREED"]).dt.normalize(), 10)
    first["paid_after_agreement"] = both
    first["paid_within_10d"] = both & (pd.to_datetime(first["PAID"]).dt.normalize() <= due)
    g = first.groupby(["branch_code", "month"]).agg(
        claims_reported=("claim_no", "size"), paid_after_agreement=("paid_after_agreement", "sum"),
        paid_within_10d=("paid_within_10d", "sum")).reset_index()
    g["paid_within_10d_share"] = g["paid_within_10d"] / g["paid_after_agreement"].replace(0, np.nan)
    return g


def call_center(calls: pd.DataFrame) -> pd.DataFrame:
    """branch x month over inbound (呼入) calls: manual answer rate and 20-second service level."""
    c = latest_version(calls, "call_id")
    c = c[c["direction"] == "呼入"].copy()
    c["month"] = month_of(c["offered_ts"])
    wait = (pd.to_datetime(c["answered_ts"]) - pd.to_datetime(c["offered_ts"])).dt.total_seconds()
    c["answered"] = c["answered_ts"].notna()
    c["within_20s"] = c["answered"] & (wait <= 20)
    g = c.groupby(["branch_code", "month"]).agg(
        offered=("call_id", "size"), answered=("answered", "sum"), within_20s=("within_20s", "sum")).reset_index()
    g["manual_answer_rate"] = g["answered"] / g["offered"]
    g["service_level_20s"] = g["within_20s"] / g["offered"]
    return g


def followups(calls: pd.DataFrame) -> pd.DataFrame:
    """branch x month of offered_ts over follow-up calls (回访): reached = 接通 or 拒访, completed =
    接通 only."""
    c = latest_version(calls, "call_id")
    c = c[c["call_type"] == "回访"].copy()
    c["month"] = month_of(c["offered_ts"])
    c["reached"] = c["outcome"].isin(["接通", "拒访"])
    c["completed"] = c["outcome"] == "接通"
    g = c.groupby(["branch_code", "month"]).agg(
        followup_calls=("call_id", "size"), followups_reached=("reached", "sum"),
        followups_completed=("completed", "sum")).reset_index()
    g["followup_completion_rate"] = g["followups_completed"] / g["followup_calls"]
    return g


def claim_decisions(events: pd.DataFrame, policies: pd.DataFrame, as_of: date) -> pd.DataFrame:
    """branch x report month: decided_claims / decided_within_30d (the 30 days of art. 23 from the
    documents-complete day, rest-day rule), claims_open on the as-of date, is_mature."""
    e = latest_version(events, "event_id")
    first = e.pivot_table(index="claim_no", columns="event_type", values="event_ts", aggfunc="min").reset_index()
    last = e.pivot_table(index="claim_no", columns="event_type", values="event_ts", aggfunc="max").reset_index()
    for col in ("DOCS_COMPLETE", "AGREED", "REJECTED", "CANCELLED", "CLOSED", "REOPENED"):
        if col not in first:
            first[col] = pd.NaT
            last[col] = pd.NaT
    first = first.merge(claim_branches(events, policies), on="claim_no")
    first["month"] = month_of(first["REPORTED"])
    decided = pd.to_datetime(first[["AGREED", "REJECTED"]].min(axis=1))
    docs = pd.to_datetime(first["DOCS_COMPLETE"])
    due = _period_end_series(docs.dt.normalize(), 30)
    first["decided_claims"] = decided.notna() & docs.notna()
    first["decided_within_30d"] = first["decided_claims"] & (decided.dt.normalize() <= due)
    last_closed = pd.to_datetime(last.set_index("claim_no")["CLOSED"]).reindex(first["claim_no"]).to_numpy()
    last_reopened = pd.to_datetime(last.set_index("claim_no")["REOPENED"]).reindex(first["claim_no"]).to_numpy()
    closed = ~pd.isna(last_closed) & (pd.isna(last_reopened) | (last_closed >= last_reopened))
    cancelled = first["CANCELLED"].notna().to_numpy()
    first["claims_open"] = ~closed & ~cancelled
    first["not_cancelled"] = ~cancelled
    g = first.groupby(["branch_code", "month"]).agg(
        decided_claims=("decided_claims", "sum"), decided_within_30d=("decided_within_30d", "sum"),
        claims_open=("claims_open", "sum"), not_cancelled=("not_cancelled", "sum")).reset_index()
    g["is_mature"] = g["claims_open"] <= 0.05 * g["not_cancelled"]
    return g


def complaint_backlog(complaints: pd.DataFrame, month_ends: list[date]) -> pd.DataFrame:
    """branch x month: tickets received by the month's last day and not closed by then."""
    c = complaint_facts(complaints)
    received = pd.to_datetime(c["received_ts"]).dt.normalize()
    closed = pd.to_datetime(c["closed_ts"]).dt.normalize()
    rows = []
    for end in month_ends:
        end_ts = pd.Timestamp(end)
        open_ = c[(received <= end_ts) & (closed.isna() | (closed > end_ts))]
        for branch, n in open_.groupby("branch_code").size().items():
            rows.append({"branch_code": branch, "month": end.replace(day=1), "open_backlog": int(n)})
    return pd.DataFrame(rows)


def audit_pass_rate(audits: pd.DataFrame) -> pd.DataFrame:
    a = latest_version(audits, "audit_id").copy()
    a["quarter"] = pd.to_datetime(a["audit_date"]).dt.to_period("Q").dt.start_time.dt.date
    a["passed"] = a["passed"] == "Y"
    g = a.groupby(["branch_code", "quarter"]).agg(audits=("audit_id", "size"), passed=("passed", "sum"))
    g = g.reset_index()
    g["pass_rate"] = g["passed"] / g["audits"]
    return g


def winback(complaints: pd.DataFrame, policies: pd.DataFrame, as_of: pd.Timestamp,
            window_months: int = 12) -> pd.DataFrame:
    """Per handled complaint: the complainant's policy due for renewal within the window after
    closure and before the as-of date (own policy first, else the earliest ending), whether it was
    renewed, whether the complainant held any policy in force the day after its due date, and
    whether a policy falls due inside the window only after the as-of date."""
    c = complaint_facts(complaints)
    c = c[c["is_accepted"] & ~c["is_duplicate"] & ~c["is_withdrawn"] & c["closed_ts"].notna()].copy()
    pol = latest_version(policies, "policy_no").copy()
    renewed_ids = set(pol["renewal_of"].dropna())
    pol["renewed"] = pol["policy_no"].isin(renewed_ids)
    pol["end_date"] = pd.to_datetime(pol["end_date"])
    pol["due"] = (pol["status"] == "ACTIVE") & (pol["end_date"] < as_of)
    owner = pol.set_index("policy_no")["customer_id"]
    c["customer_id"] = c["policy_no"].map(owner)
    due = pol[pol["due"]]
    by_customer = {k: g for k, g in due.groupby("customer_id")}
    later = pol[(pol["status"] == "ACTIVE") & (pol["end_date"] >= as_of)]
    later_by_customer = {k: g for k, g in later.groupby("customer_id")}
    # cover of every policy: start .. end, cut at the first file that showed it cancelled
    allv = policies.sort_values(["_partition", "_source_line"])
    first_cancel = allv[allv["status"] == "CANCELLED"].groupby("policy_no")["_partition"].min()
    pol["start"] = pd.to_datetime(pol["start_date"])
    pol["cancel_day"] = pd.to_datetime(pol["policy_no"].map(first_cancel))
    cover_by_customer = {k: g for k, g in pol.groupby("customer_id")}
    rows = []
    for rec in c.itertuples():
        closed_day = pd.Timestamp(rec.closed_ts).normalize()
        limit = closed_day + pd.DateOffset(months=window_months)
        candidates = by_customer.get(rec.customer_id)
        chosen = None
        if candidates is not None:
            inside = candidates[(candidates["end_date"] >= closed_day) & (candidates["end_date"] <= limit)]
            if len(inside):
                inside = inside.assign(own=(inside["policy_no"] != rec.policy_no).astype(int))
                chosen = inside.sort_values(["own", "end_date", "policy_no"]).iloc[0]
        retained = False
        if chosen is not None:
            day_after = chosen["end_date"] + pd.Timedelta(days=1)
            held = cover_by_customer.get(rec.customer_id)
            if held is not None:
                in_force = (held["start"] <= day_after) & (held["end_date"] >= day_after) & ~(
                    (held["status"] == "CANCELLED") & (held["cancel_day"].fillna(held["start"]) <= day_after))
                retained = bool(in_force.any())
        not_yet_due = False
        if chosen is None and rec.customer_id in later_by_customer:
            g = later_by_customer[rec.customer_id]
            not_yet_due = bool(((g["end_date"] >= closed_day) & (g["end_date"] <= limit)).any())
        rows.append({"complaint_no": rec.complaint_no, "branch_code": rec.branch_code,
                     "month": rec.closed_month, "handling_days": rec.handling_days,
                     "due_for_renewal": chosen is not None,
                     "renewed": bool(chosen["renewed"]) if chosen is not None else False,
                     "retained_as_customer": retained, "not_yet_due": not_yet_due})
    return pd.DataFrame(rows)


def winback_by_branch_month(facts: pd.DataFrame) -> pd.DataFrame:
    g = facts.groupby(["branch_code", "month"]).agg(
        due_for_renewal=("due_for_renewal", "sum"), renewed=("renewed", "sum"),
        retained=("retained_as_customer", "sum"), not_yet_due=("not_yet_due", "sum")).reset_index()
    g = g[g["due_for_renewal"] > 0].copy()
    g["winback_rate"] = g["renewed"] / g["due_for_renewal"]
    g["retention_rate"] = g["retained"] / g["due_for_renewal"]
    return g
