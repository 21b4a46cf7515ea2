/*
 * wtime.h — witnessed time (DESIGN §4): what a k-of-n witness quorum proves
 * about when the entries of one feed existed, and the lateness verdicts of a
 * channel's statements that follow from it.
 *
 * Pure: no I/O, no clock (the verifier's "now" is a parameter), no global
 * state. Depends on crypto (signed notes, cosignatures) and the consensus
 * codec (to read `seen` bodies). Definitions and the clock-skew argument:
 * docs/protocol.md, "Witnessed time".
 *
 * Times are Unix seconds, as cosignatures carry them; 0 means "unknown".
 *
 * For a feed F with checkpoints (any order, any number, each a signed note
 * carrying the feed's own signature and any number of cosignature lines),
 * witnesses W (type 0x04 keys, one vote per public key) and quorum k >= 1:
 *
 *   existed_by(i)  for each witness w, t_w = the earliest time of a valid
 *                  cosignature by w on a checkpoint of F with size > i; the
 *                  k-th smallest t_w. Entry i existed by then (an upper
 *                  bound on when it was written). 0 if fewer than k
 *                  witnesses have such a cosignature.
 *   absent_at(i)   for each witness w, a_w = the latest time of a valid
 *                  cosignature by w on a checkpoint with size <= i; the k-th
 *                  largest a_w. Entry i did not exist yet at that time (the
 *                  quorum saw the feed without it). 0 if unknown.
 *   not_before(i)  the largest, over `seen` entries at seq <= i of F whose
 *                  embedded checkpoint note carries cosignatures, of the k-th
 *                  largest cosignature time on that note: entry i was
 *                  written after it (a cosignature cannot be embedded before
 *                  it exists, and the chain orders i after the seen entry).
 *
 * Rejected and reported: notes that do not parse, checkpoints of another
 * origin, checkpoints not signed (or badly signed) by the feed key,
 * cosignatures by a witness of the set that do not verify, cosignatures
 * dated after now + skew. Two signed checkpoints of one size with different
 * roots are equivocation evidence: both are kept (their indexes) and
 * reported; neither is used for times.
 */
#ifndef TL_WTIME_H
#define TL_WTIME_H

#include "state.h"
#include "tl_consensus.h"

#define TL_WTIME_WITNESSES_MAX   1024u
#define TL_WTIME_CHECKPOINTS_MAX 1000000u             /* notes per feed */
#define TL_WTIME_ISSUES_MAX      1000u                /* kept; the rest are counted */
#define TL_WTIME_SKEW_DEFAULT    600u                 /* seconds */
#define TL_WTIME_TIME_MAX        (UINT64_MAX / 1000u) /* seconds that convert to ms */

struct tl_wtime_opts {
	const struct tl_vkey *witnesses; /* type 0x04; others are reported and ignored */
	size_t nwitnesses;
	unsigned quorum; /* k; 0 means nothing is ever witnessed */
	uint64_t skew_s; /* allowed clock skew; cosignatures after now + skew are invalid */
	uint64_t now_s;  /* the verifier's time; 0 = no future check */
};

/* One step of a witness's staircase: at checkpoint size `size`, the
 * earliest (for existed_by) or latest (for absent_at) valid cosignature. */
struct tl_wtime_step {
	uint64_t size;
	uint64_t time;
};

struct tl_wtime_witness {
	struct tl_vkey vk;
	/* Sorted by size, one step per distinct size, raw (not yet cumulated):
	 * first[j].time = earliest cosignature at exactly that size,
	 * last[j].time = latest. */
	struct tl_wtime_step *first, *last;
	size_t nsteps;
	uint64_t *suffix_min; /* min of first[j..].time */
	uint64_t *prefix_max; /* max of last[..j].time */
	size_t ncosigs;       /* valid cosignatures counted */
	size_t nbad;          /* lines by this witness that were rejected */
};

enum tl_wtime_issue_kind {
	TL_WT_NOTE,      /* not a signed note / not a checkpoint */
	TL_WT_ORIGIN,    /* a checkpoint of another feed */
	TL_WT_UNSIGNED,  /* not signed, or badly signed, by the feed key */
	TL_WT_COSIG,     /* a witness's cosignature does not verify */
	TL_WT_FUTURE,    /* a cosignature dated after now + skew */
	TL_WT_EQUIVOCAL, /* two roots for one size */
	TL_WT_WITNESS,   /* a witness key that is not type 0x04 */
};

struct tl_wtime_issue {
	enum tl_wtime_issue_kind kind;
	size_t note;    /* index of the checkpoint note, SIZE_MAX if none */
	uint64_t size;  /* checkpoint size when known */
	size_t witness; /* index into tl_wtime.w, SIZE_MAX if none */
	char msg[256];
};

/* Equivocation evidence: notes a and b (indexes into the input) are both
 * validly signed by the feed key, for one size, with different roots. */
struct tl_wtime_fork {
	uint64_t size;
	size_t a, b;
	uint8_t root_a[TL_HASH_LEN], root_b[TL_HASH_LEN];
};

/* One `seen` entry's not-before bound (after tl_wtime_add_seen). */
struct tl_wtime_nb {
	uint64_t seq;
	uint64_t time; /* k-th largest cosignature time on the embedded note */
};

struct tl_wtime {
	char origin[TL_ORIGIN_LEN + 1];
	unsigned quorum;
	uint64_t skew_s, now_s;
	struct tl_wtime_witness *w; /* distinct witnesses */
	size_t nw;
	size_t nnotes;       /* notes given */
	size_t ncheckpoints; /* notes accepted as signed checkpoints of the feed */
	uint64_t max_size;   /* largest accepted checkpoint size */
	struct tl_wtime_fork *forks;
	size_t nforks;
	struct tl_wtime_issue *issues;
	size_t nissues, issues_kept;
	struct tl_wtime_nb *nb; /* sorted by seq; time is the running maximum */
	size_t nnb;
};

/*
 * Builds the staircases of one feed. origin: the feed (its key signs the
 * checkpoints); notes[i], lens[i]: checkpoint notes, BORROWED for the call
 * only. Problems with the input are issues (see above), never errors;
 * errors are TL_EINVAL (bad origin, NULL arguments), TL_ETOOBIG (more than
 * TL_WTIME_CHECKPOINTS_MAX notes) and TL_ENOMEM. Free with tl_wtime_free.
 */
int tl_wtime_build(struct tl_wtime **out, const char *origin, const char *const *notes,
                   const size_t *lens, size_t n, const struct tl_wtime_opts *o) TL_WUR;
void tl_wtime_free(struct tl_wtime *wt);

/*
 * Reads the feed's records (seq order, records[i] has seq i; BORROWED for
 * the call) for `seen` entries whose body embeds a checkpoint note with
 * cosignatures by the witness set, and records their not-before bounds.
 * Records that do not decode are skipped (the bundle verifier reports
 * them). May be called once; later calls replace the bounds.
 */
int tl_wtime_add_seen(struct tl_wtime *wt, const uint8_t *const *recs, const size_t *lens,
                      size_t n) TL_WUR;

/* O(w log m) each (w witnesses, m checkpoints). 0 = unknown. */
uint64_t tl_wtime_existed_by(const struct tl_wtime *wt, uint64_t i);
uint64_t tl_wtime_absent_at(const struct tl_wtime *wt, uint64_t i);
uint64_t tl_wtime_not_before(const struct tl_wtime *wt, uint64_t i);

/*
 * existed_by for every i in [0, n) in one sweep: O(n + s * w log w) with s
 * the distinct checkpoint sizes. out has n slots; values in seconds, 0
 * unknown. scale multiplies every known value (1: seconds, 1000: ms, as
 * tl_state_add takes them).
 */
int tl_wtime_existed_all(const struct tl_wtime *wt, uint64_t *out, size_t n, uint64_t scale) TL_WUR;

/* Per witness: the number of distinct checkpoint sizes it validly cosigned. */
size_t tl_wtime_witness_steps(const struct tl_wtime *wt, size_t w);

/* ------------------------------------------------------------ lateness */

enum tl_verdict {
	TL_VERDICT_NONE,       /* no answer, not due yet */
	TL_VERDICT_ON_TIME,    /* answered by the deadline */
	TL_VERDICT_LATE,       /* answered after it, or unanswered past it */
	TL_VERDICT_NOT_PROVEN, /* (witnessed side) the evidence decides neither */
};

/* One fact of a statement's life: who wrote it where, when it claims, and
 * what the witnesses prove. */
struct tl_fact {
	int present;
	enum tl_role feed;
	uint64_t seq;
	uint64_t claimed_ms;
	uint64_t existed_by_ms; /* witnessed upper bound, 0 unknown */
	uint64_t not_before_ms; /* witnessed lower bound, 0 unknown */
};

struct tl_late {
	size_t stmt;                       /* index into the state's stmts */
	struct tl_fact sent, seen, viewed; /* first seen, first view */
	struct tl_fact answer;             /* the answer in force */
	int answer_kind;                   /* 0 none, 1 confirm, 2 dispute (as tl_stmt.answered) */
	/* The authors' claims: the state without witnessed times. */
	uint64_t claimed_deadline_ms;
	enum tl_verdict claimed;
	uint64_t claimed_days_late;
	/* The witnesses' proof. deadline_ms is 0 when the deadline itself is not
	 * witnessed (neither the statement nor the customer's seen receipt of it
	 * has a witnessed time): then the verdict is NOT_PROVEN. */
	uint64_t deadline_ms;
	enum tl_time_src deadline_src;
	enum tl_verdict witnessed;
	uint64_t days_late;    /* LATE: started days past the deadline at the evidence time */
	uint64_t late_by_ms;   /* the evidence: absent at, or written not before */
	uint64_t absent_at_ms; /* quorum time at which the answer was not in the feed */
	int conflict;          /* the witnesses prove both on time and late */
};

/*
 * Lateness of every statement of ws, a state built with witnessed times
 * (existed_by of each entry, in ms) and cs, the same feeds built without
 * (all 0) — the claimed side; cs may be NULL (claimed verdicts from ws's
 * claimed times are then not given: NONE). sup and cus: the supplier's and
 * the customer's feed wtime (either may be NULL: nothing witnessed there).
 * now_ms: the evaluation time (unanswered statements are late by claim
 * after their deadline). *out has ws->nstmts entries, in the same order.
 *
 * Rules (docs/protocol.md, "Lateness"):
 *   on time (proven)  existed_by(answer) <= deadline (also when absent_at is
 *                     exactly the deadline: both in the deadline's second)
 *   late (proven)     absent_at(answer) >= deadline, or not_before(answer)
 *                     > deadline; without an answer, absent_at(size of the
 *                     customer's feed) >= deadline
 *   days late         ceil((t - deadline) / day), t the evidence; at least 1
 */
int tl_late_eval(struct tl_late **out, const struct tl_state *ws, const struct tl_state *cs,
                 const struct tl_wtime *sup, const struct tl_wtime *cus, uint64_t now_ms) TL_WUR;

const char *tl_verdict_name(enum tl_verdict v);
const char *tl_time_src_name(enum tl_time_src s);
/* ceil((t - deadline) / day) for t > deadline, at least 1; 0 for t <= deadline. */
uint64_t tl_days_late(uint64_t t_ms, uint64_t deadline_ms);

#endif
