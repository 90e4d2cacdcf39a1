"""Parameters of the synthetic book. Their sources and the assumptions among them are listed in
docs/definitions.md ("Sample data").

Everything the generator draws from is here, so that a reader can tune the data set in one place
and the tests can compare the files against the same numbers.
"""

from __future__ import annotations

import math

# ---------------------------------------------------------------------------------------------
# The data set of `make run` (the Makefile's SCALE, DAYS, START and SEED; a test keeps them equal).
# Scale 2.5 is the smallest book on which every branch has complaints in every quarter, a fifth of
# the branch x stage x month satisfaction cells reach 100 responses and every planted effect is
# detectable; 547 days (2024-01-01 .. 2025-06-30, six quarters) keep `make run` under 3 minutes on
# two shared cores (docs/definitions.md, "Sample data").
DEFAULT_SCALE = 2.5
DEFAULT_DAYS = 547
DEFAULT_START = "2024-01-01"
DEFAULT_SEED = 42

# ---------------------------------------------------------------------------------------------
# Volume. Scale 1 = about 100k policies issued a year (new business + renewals) and, in steady
# state, about 100k policies in force. The opening book (policies issued in the 365 days before
# the start date and still in force) lands in the first day's policies file.
POLICIES_PER_YEAR_AT_SCALE_1 = 100_000
BASELINE_RENEWAL_RATE = 0.68  # 65–70 % (D)
HIGH_RISK_RENEWAL_PENALTY = 0.15  # ≥3 claims in the term: −15 pp (underwriting action)
HIGH_RISK_CLAIMS_IN_TERM = 3
CANCELLATION_SHARE = 0.04  # policies cancelled mid-term (a later CANCELLED row)
ENDORSEMENT_SHARE = 0.03  # policies changed mid-term (a later ACTIVE row, new sum insured)
NEW_CUSTOMER_SHARE = 0.70  # the rest are existing customers buying another policy (cross-holding)
MAX_POLICIES_PER_CUSTOMER = 3
RENEWAL_LEAD_DAYS = (3, 30)  # a renewal is issued this many days before the old end date
START_DELAY_DAYS = (0, 15)  # new business starts this many days after issue

# New business keeps the book steady: issued/year = new + renewals ≈ POLICIES_PER_YEAR.
NEW_BUSINESS_SHARE = 1.0 - BASELINE_RENEWAL_RATE * (1.0 - CANCELLATION_SHARE)

# ---------------------------------------------------------------------------------------------
# Lines of business: share of new business, premium lognormal (median, sigma), annual claim
# frequency of a non-cluster policy, target severity mean (so that each line's loss ratio is
# plausible), injury share of its claims.
LINES = {
    #            share  prem_median prem_sigma freq  severity_mean injury_share
    "MOTOR":     (0.70, 2500.0, 0.50, 0.25, None, 0.08),  # None = the raw two-part mixture (≈ ¥7,290)
    "PROPERTY":  (0.05, 6000.0, 0.90, 0.10, 54000.0, 0.00),
    "HOME":      (0.10, 300.0, 0.40, 0.05, 3500.0, 0.00),
    "ACCIDENT":  (0.10, 150.0, 0.40, 0.04, 2000.0, 1.00),
    "LIABILITY": (0.05, 2000.0, 0.70, 0.06, 25000.0, 0.30),
}
LINE_CODES = tuple(LINES)
# Cross-holders (an existing customer's second or third policy) lean to home and accident cover;
# new customers' line weights are derived so that the new-business mix still meets LINES' shares.
CROSS_HOLD_LINE_WEIGHTS = {"MOTOR": 0.40, "PROPERTY": 0.05, "HOME": 0.25, "ACCIDENT": 0.25, "LIABILITY": 0.05}

# Business source mix per line (DEALER sells motor only).
SOURCES = ("DIRECT", "AGENT", "DEALER", "BANK", "ONLINE")
SOURCE_WEIGHTS = {
    "MOTOR": (0.18, 0.40, 0.12, 0.05, 0.25),
    "OTHER": (0.25, 0.40, 0.00, 0.20, 0.15),
}
VEHICLE_PRICE_MEDIAN, VEHICLE_PRICE_SIGMA = 150_000.0, 0.55

# ---------------------------------------------------------------------------------------------
# Claims. Frequency: negative binomial per policy-year = Poisson with a gamma frailty (shape r),
# times a branch random effect on log(mean) (sigma 0.2), times the high-risk cluster multiplier.
NB_SHAPE = 1.5
BRANCH_FREQ_SIGMA = 0.2
REPORT_CANCEL_SHARE = 0.08  # reports cancelled (注销): on top of the claim frequency
REJECT_SHARE = 0.03  # of all reports
ZERO_CLOSE_SHARE = 0.05  # of all reports
REOPEN_SHARE_OF_PAID = 0.02
PAYMENT_BREACH_SHARE = 0.01  # explicit Art. 23 breaches (> 10 days after agreement); plus the tail
# Severity: two-part lognormal mixture (property damage / bodily injury).
SEVERITY_PD = (8.071, 1.0)
SEVERITY_INJURY = (9.602, 1.2)
ESTIMATE_NOISE_SIGMA = 0.2  # reported estimate = loss × lognormal(0, σ)
UNDERPAID_RATIO = 0.8  # assessed below 80 % of the estimate: the customer feels under-paid
REPORT_CHANNELS = ("PHONE", "APP", "WECHAT", "AGENT")
REPORT_CHANNEL_WEIGHTS = (0.75, 0.12, 0.08, 0.05)
PAYMENT_METHODS = ("BANK_TRANSFER", "ALIPAY", "WECHAT_PAY", "CHEQUE")
PAYMENT_METHOD_WEIGHTS = (0.55, 0.15, 0.25, 0.05)
# Milestones (lognormal median, sigma); minutes / hours / days as named.
DISPATCH_MINUTES = (10.0, 0.5)
ARRIVAL_MINUTES_URBAN = (40.0, 0.5)
ARRIVAL_MINUTES_RURAL = (100.0, 0.6)
ASSESS_HOURS_AFTER_ARRIVAL = (20.0, 0.7)
ASSESS_DAYS_AFTER_ARRIVAL_INJURY = (10.0, 0.8)
AGREE_DAYS_SMALL = (7.0, 0.6)  # non-injury, loss < ¥5k: report → agreement
AGREE_DAYS_LARGE = (15.0, 0.7)  # non-injury, loss ≥ ¥5k
AGREE_DAYS_INJURY = (50.0, 1.0)
PAY_DAYS_SMALL = (1.5, 0.42)  # agreement → payment, < ¥5k: 95 % within 3 days
PAY_DAYS_LARGE = (5.0, 0.35)
SMALL_CLAIM = 5000.0
MAX_CYCLE_DAYS = 300

# ---------------------------------------------------------------------------------------------
# Satisfaction (top-2-box on 1–5) by stage, a branch × stage effect on the logit scale, penalties.
STAGE_TARGETS = {"REPORT": 0.92, "SURVEY": 0.88, "ASSESSMENT": 0.80, "PAYMENT": 0.86, "COMPLAINT": 0.60}
BRANCH_STAGE_SIGMA = 0.3
PENALTY_UNDERPAID = -0.8  # ASSESSMENT and PAYMENT stages
PENALTY_SLOW_CYCLE = -0.5  # PAYMENT stage, cycle above its class p90
PENALTY_PAYMENT_BREACH = -0.8  # PAYMENT stage, paid > 10 days after agreement
# The penalties pull a stage's average below its target; this logit shift puts it back.
STAGE_COMPENSATION = {"ASSESSMENT": 0.12, "PAYMENT": 0.30}
SURVEY_RESPONSE_RATE = 0.35
SURVEY_CHANNELS = ("PHONE", "SMS", "WECHAT")
SURVEY_CHANNEL_WEIGHTS = (0.40, 0.30, 0.30)
NPS_SHARE = 0.6
COMMENT_SHARE = 0.2
COMMENT_PHONE_SHARE = 0.05  # of comments: a phone number the customer typed in (PII)
# Complaint-stage satisfaction by handling time (logit shifts); the mixture is about 0.60.
COMPLAINT_SAT_SHIFT = {"fast": 0.45, "mid": -0.25, "slow": -1.0}

# ---------------------------------------------------------------------------------------------
# Calls (per policy-year in force unless noted).
EXTRA_REPORT_CALLS_PER_CLAIM = 0.35  # PHONE reports (0.75) + these ≈ 1.1 report calls per claim
INQUIRIES_PER_POLICY_YEAR = 0.4
COMPLAINT_CALLS_PER_POLICY_YEAR = 0.003  # hotline complaint calls in all (tickets included)
CARE_CALLS_PER_POLICY_YEAR = 0.05
SALES_CALLS_PER_POLICY_YEAR = 0.10
MONDAY_FACTOR = 1.15
WAIT_SECONDS = (7.0, 1.2)  # inbound queue wait, times a day × queue congestion factor
CONGESTION_SIGMA = 0.35
PATIENCE_SECONDS = (90.0, 1.0)  # a caller abandons when the wait exceeds the patience
TALK_SECONDS = {"报案": 420.0, "咨询": 210.0, "投诉": 480.0, "回访": 150.0, "关怀": 120.0, "营销": 180.0}
TALK_SIGMA = 0.4
WRAP_UP_SECONDS = (40.0, 0.5)
FOLLOW_UP_OUTCOME_WEIGHTS = (0.80, 0.12, 0.04, 0.01, 0.03)  # 接通 无人接听 占线 空号 拒访
CAMPAIGN_OUTCOME_WEIGHTS = (0.60, 0.25, 0.07, 0.02, 0.06)
# Hour-of-day profile of inbound traffic: peaks 8–10 am and 5–7 pm.
HOUR_WEIGHTS = (1.0, 0.5, 0.3, 0.3, 0.3, 0.5, 1.5, 4.0, 9.0, 10.0, 8.0, 7.0,
                6.0, 6.0, 7.0, 7.0, 8.0, 9.0, 8.0, 5.0, 3.5, 2.5, 2.0, 1.5)
OUTBOUND_HOURS = (9, 10, 11, 14, 15, 16, 17)

# ---------------------------------------------------------------------------------------------
# Complaints (docs/definitions.md, "Sample data: complaint volume"). Two rates, per 10k policy-years:
# - every complaint the company receives, through any channel (its hotline, online, walk-in,
#   letters, and the regulator's 12378 transfers): an assumption, 50 (0.5 % of policies a year,
#   about 2 % of claim reports), with the hotline taking about half of them (0.0025 complaint
#   tickets per policy-year, the call-centre parameter below);
# - of those, the ones routed by the regulator (12378 监管转办), calibrated to the regulator's
#   published P&C medians: 0.26-0.43 per 10k policies a quarter and 3.66-4.50 per ¥100M premium
#   (2023 Q1 and 2020 Q2). 1.1 a year is 0.275 a quarter per 10k policies in force and, at this
#   book's average premium, about 4.2 per ¥100M written.
COMPLAINTS_PER_10K_POLICY_YEARS = 50.0
REGULATOR_ROUTED_PER_10K_POLICY_YEARS = 1.1
REGULATOR_CHANNEL = "REGULATOR_12378"
CLAIM_RELATED_COMPLAINT_SHARE = 0.80
# A claim's complaint propensity by its experience (relative weights); the mean is estimated
# from the outcome shares so that claim-related complaints hit their share of the rate.
COMPLAINT_WEIGHT = {"base": 1.0, "rejected": 6.0, "underpaid": 3.0, "slow": 3.0, "breach": 4.0, "cancelled": 0.3}
COMPLAINT_CHANNELS = ("HOTLINE", "REGULATOR_12378", "ONLINE", "WALK_IN", "LETTER")
# The company's own channels, as shares of the complaints not routed by the regulator (D).
OWN_CHANNEL_WEIGHTS = {"HOTLINE": 0.50, "ONLINE": 0.30, "WALK_IN": 0.10, "LETTER": 0.10}


def complaint_channel_weights(complaints_per_10k: float = COMPLAINTS_PER_10K_POLICY_YEARS,
                              regulator_per_10k: float = REGULATOR_ROUTED_PER_10K_POLICY_YEARS) -> tuple:
    """Channel probabilities in COMPLAINT_CHANNELS order: the regulator-routed share is the ratio of
    the two rates, the company's own channels split the rest."""
    regulator = min(regulator_per_10k / complaints_per_10k, 1.0)
    return tuple(regulator if c == REGULATOR_CHANNEL else (1 - regulator) * OWN_CHANNEL_WEIGHTS[c]
                 for c in COMPLAINT_CHANNELS)
NON_CLAIM_CATEGORIES = ("SALES", "SERVICE_ATTITUDE", "OTHER")
NON_CLAIM_CATEGORY_WEIGHTS = (0.40, 0.35, 0.25)
COMPLAINT_ACCEPT_SHARE = 0.92
COMPLAINT_WITHDRAW_SHARE = 0.05  # of accepted
COMPLAINT_DUPLICATE_SHARE = 0.04  # an extra ticket repeating an open one
# Liability among accepted, handled complaints; with the shares above, valid ≈ 45 % of received.
LIABILITY_WEIGHTS = {"AT_FAULT": 0.30, "PARTIAL": 0.24, "NOT_AT_FAULT": 0.46}
HANDLING_DAYS = (6.0, 0.652)  # lognormal: median 6, 92 % within 15, 99 % within 30
HANDLING_DAYS_CAP = 60.0
EXTENSION_COMPLIANCE = 0.85  # long cases that get the (legal) extension recorded in time
THIRD_PARTY_COMPLAINANT_SHARE = 0.10  # a relative or representative complains for the customer

# ---------------------------------------------------------------------------------------------
# Mystery-shopping audits: about 6 per branch per quarter.
AUDITS_PER_BRANCH_MONTH = 2.0
AUDIT_SCENARIOS = ("SIMULATED_CLAIM", "ANONYMOUS_VISIT", "ANONYMOUS_CALL")
AUDIT_SCENARIO_WEIGHTS = (0.5, 0.25, 0.25)
AUDIT_COMPETENCE_BETA = (8.0, 2.0)
AUDIT_CONVENIENCE_BETA = (7.0, 2.5)
AUDIT_PASS_ASSESSMENT, AUDIT_PASS_CONVENIENCE = 70.0, 60.0

# ---------------------------------------------------------------------------------------------
# Planted effects (written to _truth.json).
SLOW_SURVEY_BRANCH = "JL"  # the largest branch
SLOW_SURVEY_ARRIVAL_MULTIPLIER = 2.5
SLOW_SURVEY_SATISFACTION = 0.55
LONG_COMPLAINT_BRANCH = "LN"
LONG_COMPLAINT_HANDLING_DAYS = (20.0, 0.6)  # median 20, p90 ≈ 43 days: clear even with ~10 tickets
WINBACK = {"fast_days": 7, "slow_days": 15, "fast_renewal_rate": 0.72, "mid_renewal_rate": 0.55,
           "slow_renewal_rate": 0.35, "unresolved_renewal_rate": 0.25}
WINBACK_WINDOW_DAYS = 365  # a complaint closed within a year before the renewal decision counts
HIGH_RISK_CLUSTER = {"business_source": "DEALER", "line_of_business": "MOTOR", "claim_frequency_multiplier": 3.0}
# The planted topic: dissatisfied SURVEY-stage customers whose surveyor came later than the branch's
# target write about it (comments.REASON_SHARE of them); at the slow-survey branch that is most of
# them, so late surveyors are the top topic of its SURVEY stage.
PLANTED_TOPIC = {"branch": SLOW_SURVEY_BRANCH, "stage": "SURVEY", "topic": "SURVEYOR_LATE"}
# The planted key driver. A policy's renewal decision moves with the satisfaction its latest claim
# left at each stage reached before the decision: logit(renewal) += beta_s * (satisfied_s - p_s),
# where p_s is the chance that claim had of satisfying at that stage (so the book's renewal rate
# stays where it is). Satisfaction counts whether or not the customer answered the survey; the
# warehouse sees it only where they did. The PAYMENT-stage NPS (the customer's later score) moves
# with the earlier stages the same way, in NPS points. REPORT is planted as no driver at all.
KEY_DRIVER_STAGES = ("REPORT", "SURVEY", "ASSESSMENT", "PAYMENT")
KEY_DRIVER_RENEWAL_LOGIT = {"REPORT": 0.0, "SURVEY": 0.25, "ASSESSMENT": 0.9, "PAYMENT": 0.45}
KEY_DRIVER_LATER_NPS_POINTS = {"REPORT": 0.0, "SURVEY": 0.6, "ASSESSMENT": 2.0}
PLANTED_KEY_DRIVER = "ASSESSMENT"

# ---------------------------------------------------------------------------------------------
# Closing the loop (docs/definitions.md, "Sample data: follow-up, repeat calls, escalation").
# A survey response at or below DETRACTOR_MAX_SCORE, and every accepted complaint that is not a
# duplicate, opens a follow-up case; the company calls the customer back (回访) within the deadline
# of the case's rule (the dbt vars followup_rules and business_hours: 24 working hours for a
# detractor, 48 hours for a complaint). The planted branch calls back in time far less often.
DETRACTOR_MAX_SCORE = 2
BUSINESS_HOURS = (9, 18)  # the working day of the working-hour clock, local time
FOLLOWUP_DEADLINE = {"DETRACTOR": (24.0, "working"), "COMPLAINT": (48.0, "calendar")}  # hours, clock
FOLLOWUP_IN_TIME_PROBABILITY = 0.88  # (D) a case called back (reached) within its deadline
NEGLECTED_FOLLOWUP_BRANCH = "HL"
NEGLECTED_FOLLOWUP_IN_TIME_PROBABILITY = 0.30
FOLLOWUP_NEVER_SHARE = 0.40  # of the cases not called back in time: never called; the rest late
FOLLOWUP_LATE_HOURS = (2.0, 240.0)  # a late call-back comes this long after the deadline (uniform)
FOLLOWUP_MISSED_FIRST_ATTEMPT = 0.15  # an in-time call-back first misses the customer (无人接听)
# Recovery: a detractor called back in time answers the next survey more kindly and renews more
# often; one left waiting less. Logit shifts on the next responses' satisfied probability (after
# the case's deadline, within a year) and renewal rates within a year of the case (complainants
# keep their win-back rates).
FOLLOWUP_RECOVERY = {"followed_next_satisfied_logit_shift": 0.8, "not_followed_next_satisfied_logit_shift": -0.6,
                     "followed_renewal_rate": 0.70, "not_followed_renewal_rate": 0.45, "window_days": 365}
# First-contact resolution: an answered inbound call is left unresolved with this probability and
# the caller calls again about it (same phone, same policy, same call type) within the window.
REPEAT_CALL_QUEUE = "INQUIRY"
REPEAT_CALL_PROBABILITY = {"咨询": 0.25}  # planted: inquiries; the other queues repeat only naturally
REPEAT_CALL_WINDOW_HOURS = 72.0
# Escalation (越级投诉): a complainant of a company channel takes the matter to the regulator
# (12378) after the company's answer, more often when it disappointed (not accepted, not at fault,
# or handled in more than 15 days). The escalations are part of the regulator-routed rate above:
# ESCALATED_SHARE_OF_REGULATOR of it, so the direct 12378 draw is lowered by that share.
ESCALATION_PROBABILITY = {"disappointed": 0.011, "other": 0.002}
ESCALATION_DELAY_DAYS = (10.0, 0.8)  # lognormal (median, sigma) after the company's closing
ESCALATED_SHARE_OF_REGULATOR = 0.30


def direct_complaint_channel_weights() -> tuple:
    """Channel probabilities of a new (not escalated) ticket: complaint_channel_weights with the
    regulator's share lowered by the escalations that make up ESCALATED_SHARE_OF_REGULATOR of it."""
    weights = list(complaint_channel_weights())
    reg = COMPLAINT_CHANNELS.index(REGULATOR_CHANNEL)
    weights[reg] *= 1.0 - ESCALATED_SHARE_OF_REGULATOR
    total = sum(weights)
    return tuple(w / total for w in weights)


def lognormal_mean(mu: float, sigma: float) -> float:
    return math.exp(mu + sigma * sigma / 2.0)


def severity_multiplier(line: str) -> float:
    """Scale on the two-part mixture so that a line's mean severity meets its target."""
    _, _, _, _, target, injury_share = LINES[line]
    if target is None:
        return 1.0
    mixture = (1 - injury_share) * lognormal_mean(*SEVERITY_PD) + injury_share * lognormal_mean(*SEVERITY_INJURY)
    return target / mixture


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))
