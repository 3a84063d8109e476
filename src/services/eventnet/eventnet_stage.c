/*
 * eventnet_stage.c - staged changes of a round, formatted outside the
 * graph's lock (eventnet_stage.h).
 */
#include "eventnet_stage.h"

#include <stdlib.h>

void evn_stage_add(struct evn_stage *s, const struct evg_event *e, const struct evg_change *ch,
		   const char *conv, size_t conv_len)
{
	if (s->n == s->cap) {
		unsigned cap = s->cap ? s->cap * 2 : 64;
		struct evn_stage_item *it = realloc(s->it, cap * sizeof *it);
		if (!it) {
			s->oom = true;
			return;
		}
		s->it = it;
		s->cap = cap;
	}
	struct evn_stage_item *i = &s->it[s->n++];
	i->e = e;
	/* added[] is read up to nadded: not the whole struct */
	i->ch.idx = ch->idx;
	i->ch.created = ch->created;
	i->ch.conv_appended = ch->conv_appended;
	i->ch.nadded = ch->nadded;
	for (unsigned k = 0; k < ch->nadded; k++)
		i->ch.added[k] = ch->added[k];
	i->conv = conv;
	i->conv_len = conv_len;
	i->clocks_n = 0;
}

void evn_stage_format(struct evn_stage *s)
{
	for (unsigned k = 0; k < s->n; k++) {
		const struct evn_stage_item *i = &s->it[k];
		evd_journal_change(&s->j, i->e, &i->ch, i->conv, i->conv_len,
				   i->clocks_n ? i->clocks : NULL, i->clocks_n);
		evd_text_change(&s->v, &s->e, i->e, &i->ch, i->conv, i->conv_len);
	}
	s->n = 0;
	if (s->oom) /* the lost lines fail the write that would have had them */
		s->j.oom = true;
	s->oom = false;
}

void evn_stage_free(struct evn_stage *s)
{
	free(s->it);
	evd_buf_free(&s->j);
	evd_buf_free(&s->v);
	evd_buf_free(&s->e);
	*s = (struct evn_stage){0};
}
