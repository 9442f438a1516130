/* merge.h: cross-iteration fusion — queued steps of one session run as
 * one merged step, so the JIT plans and fuses across the step boundary
 * (DESIGN.md "Execution": the optimizer update of step k fuses with the
 * first uses of the parameters in step k+1).
 *
 * When the executor is about to start a session's head step and more of
 * that session's steps are queued behind it, merge_take() may take the
 * head and up to look_ahead - 1 followers and return one new step whose
 * graph is their graphs concatenated in submission order:
 *  - an EXTERN of a later step bound to a var that an earlier step of the
 *    merge keeps becomes a reference to the node computing that var (so
 *    the fuser sees one graph); other EXTERNs become EXTERNs of the merged
 *    step, one per distinct var (a var read by two steps is bound once);
 *  - keep is the union: every kept var is still materialised, since the
 *    client may fetch any of them;
 *  - from[] maps each node to its SUBMIT node, and merge_origin() tells
 *    which step it belongs to.
 * The merged graph is a copy of the steps' nodes with inputs and EXTERN
 * slots renumbered; attributes that point to memory (array data, reindex
 * expressions) are borrowed from the steps' graphs, which the merged step
 * owns (in `parts`) and frees only after its own graph.
 *
 * Rules (why each keeps merging invisible to clients):
 *  1. Only steps already queued are merged; nothing ever waits for a step
 *     to arrive. The look-ahead (kilnd --look-ahead, 1..MERGE_LOOK_AHEAD_MAX,
 *     default 2; 1 turns merging off) bounds how many run as one, so the
 *     memory a merged run holds (every part's kept values at once) and
 *     the delay of an early part's results stay bounded.
 *  2. The head starts only when nothing of its session runs, so every var
 *     a part reads is either kept by an earlier part of the same merge or
 *     already computed. A part that reads a var that is not READY (failed,
 *     or anything unexpected) ends the merge before it: that step runs
 *     alone and fails exactly as it would have.
 *  3. Vars are matched by identity (the struct sess_var), not by id: a
 *     RELEASE between two submits cannot confuse them. A released var
 *     that an earlier part keeps is still computed (the step holds it), as
 *     without merging. A step that asked to run alone (no_merge) or that
 *     keeps the value of an EXTERN directly ends the merge too.
 *  4. Random numbers: a RANDOM node's stream is its own (seed, offset),
 *     attributes set by the client and kept by the copy; the graph a node
 *     sits in does not change its numbers.
 *  5. Failure: if a merged run fails in any way (an error in any part,
 *     its memory quota, a JIT refusal — the interpreter is not used for
 *     merged graphs), merge_undo() puts the original steps back at the
 *     front of the queue, marked no_merge, and they run again one by one:
 *     which vars fail and what the errors say are exactly what they would
 *     have been without merging. Nothing of the failed run is kept.
 *     Nor can a merged run succeed where a part alone would have run out
 *     of its memory quota: the merged run gets the quota the head alone
 *     would get, and fitting it means holding each part's peak together
 *     with the earlier parts' results, more than that part alone needs
 *     within its own quota (reduced by those results, charged by then).
 *  6. A merged step is one running step: the JIT quota, CANCEL (which only
 *     drops steps that have not started: the parts of a running merged
 *     step have started) and the end of the session (the merged step runs
 *     out as an orphan and frees its parts) treat it as such.
 *  7. Limits: a merged graph holds at most MERGE_MAX_NODES nodes, and the
 *     memory of the copy is charged to the session like a step's graph;
 *     beyond either, the head runs alone. An allocation failure while
 *     merging is not an error: the head runs alone.
 *
 * Loop thread only.
 */
#ifndef KILND_MERGE_H
#define KILND_MERGE_H

#include <stdint.h>

#include "kiln_limits.h"
#include "session.h"
#include "step.h"

#define MERGE_LOOK_AHEAD_DEFAULT 2
#define MERGE_LOOK_AHEAD_MAX     8                      /* steps merged into one at most */
#define MERGE_MAX_NODES          (4u * KILN_LIMIT_NODES) /* graph nodes of a merged step */

/* Take the step to start next from a session's queue `*head` (linked by
 * `next`; not empty): the head alone, or a new merged step owning the
 * head and the followers merged with it. Those steps leave the queue
 * (*head moves past them; the caller fixes its tail when *head becomes
 * NULL) and *taken says how many. `s` is their session (the merged
 * graph's copy is charged to it). Never fails. */
struct step *merge_take(struct sess_table *t, struct sess *s, struct step **head,
                        unsigned look_ahead, uint32_t *taken);

/* A merged step `m` that failed or was cancelled: its parts go back to
 * the front of the queue (*head, *tail), marked no_merge, and `m` is
 * freed. With head NULL (the session is gone) the parts are freed too.
 * Returns how many steps went back. */
uint32_t merge_undo(struct sess_table *t, struct step *m, struct step **head,
                    struct step **tail);

/* The part of merged step `m` that graph node `node` came from, and in
 * *submit_node its node in that SUBMIT; NULL when `node` is out of range. */
const struct step *merge_origin(const struct step *m, uint32_t node, uint32_t *submit_node);

#endif
