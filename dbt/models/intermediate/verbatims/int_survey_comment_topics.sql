-- Which topics each comment mentions: one row per comment and topic it mentions (a keyword of the
-- topic occurs in the comment; docs/definitions.md#verbatim-topics).
select distinct
    c.response_id,
    k.topic_code
from {{ ref('int_survey_comments') }} as c
inner join {{ ref('verbatim_topic_keywords') }} as k on {{ contains_text('c.comment', 'k.keyword') }}
