-- Survey responses with a comment, the branch and month they count for, and the comment's
-- sentiment from the reviewed lexicon (docs/definitions.md#verbatim-sentiment). The comment is
-- scrubbed of phone and ID numbers (again: staging already did, and the scrub is idempotent), so
-- nothing read from here can carry them.
with responses as (
    select
        a.response_id,
        a.branch_code,
        a.stage,
        a.responded_month,
        a.claim_no,
        a.score,
        a.is_satisfied,
        {{ scrub_pii('c.comment') }} as comment
    from {{ ref('int_surveys__attributed') }} as a
    inner join {{ ref('int_surveys__current') }} as c on c.response_id = a.response_id
    where c.comment is not null and trim(c.comment) <> ''
),

terms as (
    select term, polarity from {{ ref('sentiment_lexicon') }} where kind <> 'NEGATOR'
),

negators as (
    select term as negator from {{ ref('sentiment_lexicon') }} where kind = 'NEGATOR'
),

hits as (
    select
        r.response_id,
        r.comment,
        t.term,
        t.polarity,
        {{ occurrences('r.comment', 't.term') }} as occurrences
    from responses as r
    inner join terms as t on {{ contains_text('r.comment', 't.term') }}
),

-- occurrences right after a negator flip the term's polarity (不满意, 没有解决)
negated as (
    select
        h.response_id,
        h.term,
        sum({{ occurrences('h.comment', dbt.concat(['n.negator', 'h.term'])) }}) as negated
    from hits as h
    cross join negators as n
    where {{ contains_text('h.comment', dbt.concat(['n.negator', 'h.term'])) }}
    group by h.response_id, h.term
),

scored as (
    select
        h.response_id,
        sum(h.occurrences) as sentiment_terms,
        sum(h.polarity * (h.occurrences - 2 * coalesce(n.negated, 0))) as sentiment_sum
    from hits as h
    left join negated as n on n.response_id = h.response_id and n.term = h.term
    group by h.response_id
)

select
    r.response_id,
    r.branch_code,
    r.stage,
    r.responded_month,
    r.claim_no,
    r.score,
    r.is_satisfied,
    r.comment,
    coalesce(s.sentiment_terms, 0) as sentiment_terms,
    case when s.sentiment_terms > 0 then cast(s.sentiment_sum as double) / s.sentiment_terms end as sentiment_score,
    case
        when s.sentiment_terms is null or s.sentiment_terms = 0 then 'NONE'
        when s.sentiment_sum > 0 then 'POSITIVE'
        when s.sentiment_sum < 0 then 'NEGATIVE'
        else 'MIXED'
    end as sentiment_label
from responses as r
left join scored as s on s.response_id = r.response_id
