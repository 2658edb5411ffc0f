/*
 * test_handoff_state.c - rcat handoff's state table (rcat/handoff_state.c):
 * every combination of what the two sides hold, and the walk of one batch
 * through a whole cycle, with the promise each row keeps.
 */
#include <check.h>
#include <stdlib.h>

#include "handoff_state.h"
#include "check_run.h"

/* All 16 combinations: {source, ready, dest, processed} -> action. A
 * ready mark without its directory (or processed without dest) cannot be
 * seen: the run only looks inside a directory that is there. */
static const struct {
    struct handoff_seen seen;
    enum handoff_action want;
} rows[] = {
    {{0, 0, 0, 0}, HANDOFF_NOTHING},
    {{1, 0, 0, 0}, HANDOFF_WAIT_SENDER},
    {{1, 1, 0, 0}, HANDOFF_SEND},
    /* delivered, not processed: never sent again, whether or not the
     * source is still marked (a producer reusing the name waits too) */
    {{1, 1, 1, 0}, HANDOFF_WAIT_RECEIVER},
    {{1, 0, 1, 0}, HANDOFF_WAIT_RECEIVER},
    {{0, 0, 1, 0}, HANDOFF_WAIT_RECEIVER},
    /* processed: the source goes first, then the destination */
    {{1, 1, 1, 1}, HANDOFF_CLEAR_BOTH},
    {{1, 0, 1, 1}, HANDOFF_CLEAR_BOTH},
    /* a run killed between the two clears: only the destination is left */
    {{0, 0, 1, 1}, HANDOFF_CLEAR_DEST},
};

START_TEST(every_combination)
{
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        ck_assert_msg(handoff_decide(&rows[i].seen) == rows[i].want, "row %zu: %s, not %s", i,
                      handoff_action_name(handoff_decide(&rows[i].seen)),
                      handoff_action_name(rows[i].want));
}
END_TEST

/* Whatever the table says for a state, the state that action leaves
 * (whole or cut short at any step) is never answered by a second SEND of a
 * delivered batch, and the cycle ends with both sides empty. */
static void apply(struct handoff_seen *s, enum handoff_action a, int cut)
{
    switch (a) {
    case HANDOFF_SEND:
        if (!cut)
            s->dest = 1; /* the rename: all or nothing */
        break;
    case HANDOFF_CLEAR_BOTH:
        s->source = s->ready = 0;
        if (!cut)
            s->dest = s->processed = 0;
        break;
    case HANDOFF_CLEAR_DEST:
        s->dest = s->processed = 0;
        break;
    default:
        break;
    }
}

START_TEST(a_cycle_cut_anywhere_sends_once)
{
    for (int cut_at = 0; cut_at < 6; cut_at++) {
        struct handoff_seen s = {1, 0, 0, 0};
        int sends = 0, steps = 0;

        for (int run = 0; run < 12; run++) {
            enum handoff_action a = handoff_decide(&s);

            if (a == HANDOFF_SEND)
                sends++;
            apply(&s, a, run == cut_at);
            if (run == 1)
                s.ready = 1; /* the producer finishes */
            if (run == 4 && s.dest)
                s.processed = 1; /* the consumer finishes */
            steps++;
        }
        ck_assert_msg(sends == 1 + (cut_at == 2), "cut at %d: %d sends", cut_at, sends);
        ck_assert_msg(!s.source && !s.dest, "cut at %d: not cleared", cut_at);
        ck_assert_int_eq(handoff_decide(&s), HANDOFF_NOTHING);
        ck_assert_int_eq(steps, 12);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("handoff_state");
    TCase *t = tcase_create("handoff_state");

    tcase_add_test(t, every_combination);
    tcase_add_test(t, a_cycle_cut_anywhere_sends_once);
    suite_add_tcase(s, t);
    return check_run(s);
}
