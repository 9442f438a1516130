/* merge.c: queued steps of a session merged into one (see merge.h).
 *
 * merge_take works in two passes over each candidate step: a check that
 * changes nothing (rules 2, 3 and 7 of merge.h), then the copy, which can
 * fail only for memory. So a step that may not join ends the merge before
 * it with the steps before it merged, and a failed allocation drops the
 * whole merge: the head then runs alone, as it would without merging.
 *
 * Vars are looked up by address in an idmap (var -> merged node + 1): the
 * node that computes a var kept by an earlier part, or the EXTERN already
 * made for a var read from the session.
 */
#include <stdlib.h>
#include <string.h>

#include "idmap.h"
#include "merge.h"

#define VAR_KEY(v)  ((uint64_t) (uintptr_t) (v))
#define AS_PTR(n)   ((void *) (uintptr_t) ((n) + 1))
#define AS_NODE(p)  ((uint32_t) ((uintptr_t) (p) - 1))

struct merging {
    struct step *m;   /* the merged step being built */
    struct idmap vars; /* var -> merged node + 1 */
    uint32_t capnodes, capbind, capkeep;
    uint32_t *map;    /* the part being copied: its node -> merged node */
    uint32_t capmap;
};

static bool same_value(const struct ir_node *a, const struct ir_node *b)
{
    return a->dtype == b->dtype && a->rank == b->rank && a->numel == b->numel &&
           memcmp(a->shape, b->shape, (size_t) a->rank * sizeof(a->shape[0])) == 0;
}

/* Check only: may step `p` join the merge as built so far? */
static bool may_join(const struct merging *g, const struct step *p)
{
    const struct step *m = g->m;
    if (p->no_merge || p->nparts != 0 || p->session != m->session || p->device != m->device ||
        p->tf32 != m->tf32)
        return false;
    if (p->graph.count > MERGE_MAX_NODES - m->graph.count)
        return false;
    for (uint32_t j = 0; j < p->nkeep; j++)
        if (p->keep[j].node >= p->graph.count ||
            p->graph.nodes[p->keep[j].node].op == IR_OP_EXTERN)
            return false; /* its var would share a buffer with another one */
    for (uint32_t i = 0; i < p->graph.count; i++) {
        const struct ir_node *n = &p->graph.nodes[i];
        if (n->op != IR_OP_EXTERN)
            continue;
        if (n->attr.ext.slot >= p->nbind)
            return false;
        const struct sess_var *v = p->bind[n->attr.ext.slot];
        void *at = idmap_get(&g->vars, VAR_KEY(v));
        if (at != NULL) {
            if (!same_value(&m->graph.nodes[AS_NODE(at)], n))
                return false;
        } else if (v->state != SESS_VAR_READY) {
            return false; /* it runs alone and fails as it would have */
        }
    }
    return true;
}

static bool grow(void **p, uint32_t *cap, uint32_t want, size_t size)
{
    if (want <= *cap)
        return true;
    uint32_t c = *cap ? *cap : 64;
    while (c < want)
        c = c > UINT32_MAX / 2 ? want : c * 2;
    void *grown = realloc(*p, (size_t) c * size);
    if (grown == NULL)
        return false;
    *p = grown;
    *cap = c;
    return true;
}

/* Copy step `p` into the merge; false only for memory (then the merge is
 * dropped as a whole). */
static bool join(struct merging *g, struct step *p)
{
    struct step *m = g->m;
    struct ir_graph *mg = &m->graph;
    uint32_t want = mg->count + p->graph.count;
    if (!grow((void **) &mg->nodes, &mg->cap, want, sizeof(*mg->nodes)) ||
        !grow((void **) &m->from, &g->capnodes, want, sizeof(*m->from)) ||
        !grow((void **) &g->map, &g->capmap, p->graph.count, sizeof(*g->map)) ||
        !grow((void **) &m->bind, &g->capbind, m->nbind + p->nbind, sizeof(*m->bind)) ||
        !grow((void **) &m->keep, &g->capkeep, m->nkeep + p->nkeep, sizeof(*m->keep)))
        return false;
    p->merged_at = mg->count;
    for (uint32_t i = 0; i < p->graph.count; i++) {
        struct ir_node n = p->graph.nodes[i];
        if (n.op == IR_OP_EXTERN) {
            struct sess_var *v = p->bind[n.attr.ext.slot];
            void *at = idmap_get(&g->vars, VAR_KEY(v));
            if (at != NULL) { /* computed by an earlier part, or bound already */
                g->map[i] = AS_NODE(at);
                continue;
            }
            if (idmap_put(&g->vars, VAR_KEY(v), AS_PTR(mg->count)) != KILN_OK)
                return false;
            n.attr.ext.slot = mg->nextern++;
            m->bind[m->nbind++] = v;
        }
        for (uint8_t k = 0; k < n.nin; k++)
            n.in[k] = g->map[n.in[k]]; /* inputs precede i, so they are mapped */
        m->from[mg->count] = p->from[i];
        g->map[i] = mg->count;
        mg->nodes[mg->count++] = n;
    }
    for (uint32_t j = 0; j < p->nkeep; j++) {
        uint32_t node = g->map[p->keep[j].node];
        if (idmap_put(&g->vars, VAR_KEY(p->keep[j].var), AS_PTR(node)) != KILN_OK)
            return false;
        m->keep[m->nkeep].var = p->keep[j].var;
        m->keep[m->nkeep++].node = node;
    }
    return true;
}

/* What a merged step of `count` nodes holds, charged like a step's graph. */
static uint64_t merged_bytes(uint64_t count, uint64_t nbind, uint64_t nkeep)
{
    return count * (sizeof(struct ir_node) + sizeof(uint32_t)) +
           nbind * sizeof(struct sess_var *) + nkeep * sizeof(struct step_keep);
}

/* Free a merge being built: its references were not taken yet. */
static void drop(struct merging *g)
{
    struct step *m = g->m;
    free(m->bind);
    free(m->keep);
    free(m->from);
    free(m->inputs);
    free(m->graph.nodes);
    free(m);
    free(g->map);
    idmap_fini(&g->vars);
}

/* The merge of head and up to look_ahead - 1 followers, or NULL (*taken
 * says how many it took). */
static struct step *build(struct sess_table *t, struct sess *s, struct step *head,
                          unsigned look_ahead, uint32_t *taken)
{
    struct merging g = {0};
    idmap_init(&g.vars);
    if ((g.m = calloc(1, sizeof(*g.m))) == NULL)
        return NULL;
    struct step *m = g.m;
    ir_graph_init(&m->graph);
    m->session = head->session;
    m->device = head->device;
    m->tf32 = head->tf32;
    m->acct = head->acct;
    m->number = head->number;
    m->exec = head->exec;
    uint32_t n = 0;
    uint64_t nodes = 0, nbind = 0, nkeep = 0;
    for (struct step *p = head; p != NULL && n < look_ahead; p = p->next, n++) {
        if (!may_join(&g, p))
            break;
        if (!join(&g, p)) {
            n = 0;
            break;
        }
        nodes += p->graph.count;
        nbind += p->nbind;
        nkeep += p->nkeep;
    }
    uint64_t bytes = merged_bytes(nodes, nbind, nkeep);
    struct proto_error err;
    if (n < 2 || (m->nbind > 0 && (m->inputs = calloc(m->nbind, sizeof(*m->inputs))) == NULL) ||
        sess_mem_charge(t, s, bytes, &err) != KILN_OK) {
        drop(&g);
        return NULL;
    }
    free(g.map);
    idmap_fini(&g.vars);
    /* Every bound var is READY (may_join): gathered now, so that starting
     * the merged step cannot fail where the head alone would not. */
    for (uint32_t k = 0; k < m->nbind; k++) {
        sess_var_ref(m->bind[k]);
        m->inputs[k] = m->bind[k]->data;
    }
    for (uint32_t j = 0; j < m->nkeep; j++)
        sess_var_ref(m->keep[j].var);
    m->charged = bytes;
    m->nparts = n;
    *taken = n;
    return m;
}

struct step *merge_take(struct sess_table *t, struct sess *s, struct step **head,
                        unsigned look_ahead, uint32_t *taken)
{
    struct step *first = *head;
    if (look_ahead > MERGE_LOOK_AHEAD_MAX)
        look_ahead = MERGE_LOOK_AHEAD_MAX;
    struct step *m = NULL;
    if (look_ahead >= 2 && first->next != NULL)
        m = build(t, s, first, look_ahead, taken);
    if (m == NULL) {
        *head = first->next;
        first->next = NULL;
        *taken = 1;
        return first;
    }
    struct step *last = first;
    for (uint32_t k = 1; k < m->nparts; k++)
        last = last->next;
    *head = last->next;
    last->next = NULL;
    m->parts = first;
    return m;
}

uint32_t merge_undo(struct sess_table *t, struct step *m, struct step **head,
                    struct step **tail)
{
    if (head == NULL) {
        step_free(t, m); /* and its parts */
        return 0;
    }
    struct step *first = m->parts, *last = NULL;
    uint32_t n = 0;
    for (struct step *p = first; p != NULL; p = p->next) {
        p->no_merge = true;
        p->merged_at = 0;
        last = p;
        n++;
    }
    m->parts = NULL;
    step_free(t, m);
    if (last == NULL)
        return 0;
    last->next = *head;
    if (*head == NULL)
        *tail = last;
    *head = first;
    return n;
}

const struct step *merge_origin(const struct step *m, uint32_t node, uint32_t *submit_node)
{
    if (node >= m->graph.count)
        return NULL;
    const struct step *at = m->nparts > 0 ? m->parts : m;
    for (const struct step *p = at; m->nparts > 0 && p != NULL; p = p->next)
        if (p->merged_at <= node)
            at = p;
    *submit_node = m->from != NULL ? m->from[node] : 0;
    return at;
}
