-- Topics of the customers' own words per branch x stage x month x topic
-- (docs/definitions.md#mart_verbatim_topics): how many comments mention the topic, their share of
-- the comments, their sentiment, and CSAT among the responses that mention the topic against the
-- cell's other responses, with Wilson intervals and Newcombe's interval of the difference.
{%- set z = var('wilson_z') %}
with responses as (
    select a.response_id, a.branch_code, a.stage, a.responded_month as month, a.is_satisfied,
           c.response_id is not null as has_comment
    from {{ ref('int_surveys__attributed') }} as a
    left join {{ ref('int_survey_comments') }} as c on c.response_id = a.response_id
),

cells as (
    select
        branch_code, stage, month,
        count(*) as responses,
        count(case when is_satisfied then 1 end) as satisfied,
        count(case when has_comment then 1 end) as commented
    from responses
    group by branch_code, stage, month
),

mentions as (
    select
        c.branch_code, c.stage, c.responded_month as month, t.topic_code,
        count(*) as mentions,
        count(case when c.is_satisfied then 1 end) as satisfied_mentioning,
        count(case when c.sentiment_score is not null then 1 end) as sentiment_scored,
        sum(coalesce(c.sentiment_score, 0.0)) as sentiment_score_sum,
        count(case when c.sentiment_score < 0 then 1 end) as negative_mentions
    from {{ ref('int_survey_comment_topics') }} as t
    inner join {{ ref('int_survey_comments') }} as c on c.response_id = t.response_id
    group by c.branch_code, c.stage, c.responded_month, t.topic_code
),

grid as (
    select
        c.branch_code, c.stage, c.month,
        tp.code as topic_code, tp.label_zh as topic_label_zh, tp.label_en as topic_label_en,
        tp.polarity as topic_polarity,
        c.responses, c.satisfied, c.commented,
        coalesce(m.mentions, 0) as mentions,
        coalesce(m.satisfied_mentioning, 0) as satisfied_mentioning,
        coalesce(m.sentiment_scored, 0) as sentiment_scored,
        coalesce(m.sentiment_score_sum, 0.0) as sentiment_score_sum,
        coalesce(m.negative_mentions, 0) as negative_mentions
    from cells as c
    cross join {{ ref('verbatim_topics') }} as tp
    left join mentions as m
        on m.branch_code = c.branch_code and m.stage = c.stage and m.month = c.month and m.topic_code = tp.code
),

rates as (
    select
        *,
        responses - mentions as responses_not_mentioning,
        satisfied - satisfied_mentioning as satisfied_not_mentioning,
        {{ safe_ratio('mentions', 'commented') }} as mention_share,
        {{ safe_ratio('satisfied_mentioning', 'mentions') }} as csat_mentioning,
        {{ safe_ratio('satisfied - satisfied_mentioning', 'responses - mentions') }} as csat_not_mentioning,
        case when commented > 0 then {{ wilson_low('mentions', 'commented', z) }} end as mention_share_low,
        case when commented > 0 then {{ wilson_high('mentions', 'commented', z) }} end as mention_share_high,
        case when mentions > 0 then {{ wilson_low('satisfied_mentioning', 'mentions', z) }} end as csat_mentioning_low,
        case when mentions > 0 then {{ wilson_high('satisfied_mentioning', 'mentions', z) }} end as csat_mentioning_high,
        case when responses > mentions
            then {{ wilson_low('satisfied - satisfied_mentioning', 'responses - mentions', z) }} end as csat_not_mentioning_low,
        case when responses > mentions
            then {{ wilson_high('satisfied - satisfied_mentioning', 'responses - mentions', z) }} end as csat_not_mentioning_high
    from grid
)

select
    branch_code,
    stage,
    month,
    topic_code,
    topic_label_zh,
    topic_label_en,
    topic_polarity,
    responses,
    satisfied,
    commented,
    mentions,
    mention_share,
    mention_share_low,
    mention_share_high,
    satisfied_mentioning,
    csat_mentioning,
    csat_mentioning_low,
    csat_mentioning_high,
    responses_not_mentioning,
    satisfied_not_mentioning,
    csat_not_mentioning,
    csat_not_mentioning_low,
    csat_not_mentioning_high,
    csat_mentioning - csat_not_mentioning as csat_gap,
    -- Newcombe (1998) method 10: the difference of two Wilson intervals
    csat_mentioning - csat_not_mentioning - sqrt(
        power(csat_mentioning - csat_mentioning_low, 2) + power(csat_not_mentioning_high - csat_not_mentioning, 2)
    ) as csat_gap_low,
    csat_mentioning - csat_not_mentioning + sqrt(
        power(csat_mentioning_high - csat_mentioning, 2) + power(csat_not_mentioning - csat_not_mentioning_low, 2)
    ) as csat_gap_high,
    sentiment_scored,
    sentiment_score_sum,
    {{ safe_ratio('sentiment_score_sum', 'sentiment_scored') }} as mean_sentiment,
    negative_mentions,
    {{ safe_ratio('negative_mentions', 'mentions') }} as negative_share
from rates
