/*
 * state.h — the channel state machine (DESIGN §6, issue 4 item 6): each
 * statement's status, timeline and dispute lines, the terms in force and
 * the findings, as a pure deterministic function of a channel's two
 * verified feeds and an evaluation time.
 *
 * Pure: no I/O, no clock, no global state. Depends on crypto and msgpack
 * bytes already validated by tl_record_decode (bodies are read by a small
 * strict reader over canonical MessagePack; no JSON here).
 *
 * Determinism: the result depends only on the contents of the two feeds,
 * the per-entry witnessed times, the supplier hint and now_ms. Records may
 * be added in any interleaving of the two feeds (each feed in seq order);
 * nothing is evaluated until tl_state_build, which reads the supplier's feed
 * fully, then the customer's, then evaluates. Feeds are named by role
 * (supplier, customer), never by the order in which they were added.
 *
 * Signatures: the builder checks each record's encoding, seq and prev chain
 * but not its book signature — feeds are verified before they get here
 * (tl_record_verify_sig / the bundle verifier). Person signatures on
 * confirm and dispute are checked here, because they decide authority.
 *
 * Rules (docs/protocol.md, "Reconciliation entries"):
 *   - supplier: the origin whose key the caller names, else the author of
 *     the first `statement` (if both feeds hold statements: the earlier by
 *     effective time, then seq, then origin bytes; a finding says so);
 *   - terms: defaults (monthly, day 1, 10 response days, confirmation,
 *     unilateral) until a `terms.accept` by one side names the leaf of a
 *     `terms.propose` by the other; a statement uses the latest agreement
 *     whose accept time (witnessed, else claimed) is <= the statement's;
 *   - people: `key.grant` / `key.revoke` in the customer's feed; a confirm
 *     or dispute at seq N needs `person` granted approver or director at a
 *     seq < N with no revoke in between, and a valid `person_sig`;
 *   - status precedence: closed > re-issued > confirmed / disputed (the
 *     later valid answer in the customer's feed) > deemed confirmed >
 *     overdue > viewed > seen > sent.
 *   - deadline: statement time (witnessed, else the witnessed or claimed
 *     time of the customer's first `seen` covering it, else claimed) +
 *     response_days * 86,400,000 ms.
 */
#ifndef TL_STATE_H
#define TL_STATE_H

#include "tl_consensus.h"

#define TL_STATE_ENTRIES_MAX       (1u << 24) /* records per feed */
#define TL_STATE_STMTS_MAX         1000000u   /* statement versions per channel */
#define TL_STATE_LINES_MAX         100000u    /* lines per statement or dispute */
#define TL_STATE_TIMELINE_MAX      1024u      /* events kept per statement */
#define TL_STATE_FINDINGS_MAX      10000u     /* findings kept (the rest counted) */
#define TL_STATE_PEOPLE_MAX        100000u    /* distinct person keys granted */
#define TL_STATE_TERMS_MAX         10000u     /* terms proposals */
#define TL_STATE_STR_MAX           128u       /* ids, docs, terms ids, tz, ... */
#define TL_STATE_NOTE_MAX          1024u      /* dispute line notes (longer: cut) */
#define TL_STATE_RESPONSE_DAYS_MAX 3660u
#define TL_DAY_MS                  86400000ull
#define TL_PERSON_SIG_CONTEXT      "tally/person/v1\n"

enum tl_role { TL_ROLE_SUPPLIER = 0, TL_ROLE_CUSTOMER = 1 };

enum tl_stmt_status {
	TL_STMT_SENT,
	TL_STMT_SEEN,
	TL_STMT_VIEWED,
	TL_STMT_OVERDUE,
	TL_STMT_DEEMED,
	TL_STMT_DISPUTED,
	TL_STMT_CONFIRMED,
	TL_STMT_REISSUED,
	TL_STMT_CLOSED,
};

enum tl_procedure { TL_PROC_CONFIRMATION, TL_PROC_NOTIFICATION, TL_PROC_BALANCE };
/* month: `day` 1..31 (a shorter month uses its last day); week: `day` 1..7,
 * ISO 8601 (1 Monday .. 7 Sunday); cron: `rule`, five fields "m h dom mon
 * dow" (docs/protocol.md lists the subset). */
enum tl_cycle { TL_CYCLE_MONTH, TL_CYCLE_WEEK, TL_CYCLE_CRON };

#define TL_TERMS_ESC_MAX       8u        /* escalation steps */
#define TL_TERMS_WITNESSES_MAX 8u        /* witness keys */
#define TL_TERMS_VKEY_MAX      320u      /* bytes of one witness vkey string */
#define TL_TZ_OFFSET_MAX       (14 * 60) /* minutes, either side of UTC */

/* One step of the escalation ladder: after_days past the deadline, raise
 * to level, addressed to `to` (a role or address; a label here). */
struct tl_escalation {
	uint32_t after_days;
	uint32_t level;
	char to[TL_STATE_STR_MAX + 1];
};

/* Where a time comes from: only witnessed times are proof (DESIGN §4). */
enum tl_time_src {
	TL_TIME_CLAIMED,      /* the author's time_ms */
	TL_TIME_SEEN_CLAIMED, /* the customer's seen receipt, its claimed time */
	TL_TIME_SEEN_WITNESSED,
	TL_TIME_WITNESSED,
};

enum tl_event {
	TL_EV_SENT,
	TL_EV_SEEN,
	TL_EV_VIEWED,
	TL_EV_CONFIRMED,
	TL_EV_DISPUTED,
	TL_EV_REFUSED, /* a confirm or dispute without authority: see findings */
	TL_EV_REISSUED,
	TL_EV_REMINDER,
	TL_EV_ESCALATED,
	TL_EV_COMMENT,
	TL_EV_CLOSED,
};

enum tl_finding_kind {
	TL_FIND_INVALID,   /* body does not match its kind's schema */
	TL_FIND_AUTHOR,    /* kind written by the wrong side */
	TL_FIND_REF,       /* names an unknown or wrong entry */
	TL_FIND_AUTHORITY, /* person not an approver, revoked, bad signature */
	TL_FIND_RULE,      /* against the workflow (close before confirm, ...) */
	TL_FIND_ROLES,     /* how the supplier was chosen */
	TL_FIND_LIMIT,     /* a cap was reached */
};

enum tl_reason {
	TL_REASON_PRICE,
	TL_REASON_QUANTITY,
	TL_REASON_QUALITY,
	TL_REASON_NOT_RECEIVED,
	TL_REASON_PAYMENT_NOT_RECORDED,
	TL_REASON_DUPLICATE,
	TL_REASON_TAX,
	TL_REASON_FX,
	TL_REASON_CUT_OFF,
	TL_REASON_OTHER,
};

struct tl_terms {
	char terms_id[TL_STATE_STR_MAX + 1]; /* "default" for the defaults */
	enum tl_cycle every;
	uint32_t day;                    /* month: 1..31; week: 1..7; cron: 0 */
	char rule[TL_STATE_STR_MAX + 1]; /* cron only, else "" */
	/* As written: "" (UTC), "UTC", "Z", "+08:00" / "-05:30", or an IANA
	 * name. The state machine has no time zone database: tz_fixed is 1 and
	 * tz_offset_min the offset for the first four forms; an IANA name is
	 * a label (tz_fixed 0) and cycle dates are then computed at UTC. */
	char tz[TL_STATE_STR_MAX + 1];
	int tz_fixed;
	int32_t tz_offset_min; /* minutes east of UTC */
	uint32_t response_days;
	enum tl_procedure procedure;
	char currency[TL_STATE_STR_MAX + 1]; /* "" in the defaults: any */
	size_t nescalation;
	struct tl_escalation escalation[TL_TERMS_ESC_MAX]; /* by after_days */
	size_t nwitnesses;
	char witnesses[TL_TERMS_WITNESSES_MAX][TL_TERMS_VKEY_MAX + 1]; /* C2SP vkeys, type 0x04 */
	uint32_t quorum; /* 1..nwitnesses; 0 when there are no witnesses */
	int unilateral;  /* 1: the defaults, never agreed */
	/* For agreed terms: who proposed, and where the accept is. */
	enum tl_role proposer;
	uint64_t propose_seq, accept_seq;
	uint64_t accept_time_ms; /* witnessed if known, else claimed */
};

/* A valid terms.propose of either side; accepted or pending. */
struct tl_proposal {
	uint8_t leaf[TL_HASH_LEN];
	int accepted;
	struct tl_terms t; /* t.proposer, t.propose_seq; accept_* once accepted */
};

struct tl_state_event {
	enum tl_event event;
	enum tl_role feed;
	uint64_t seq;
	uint64_t claimed_ms;
	uint64_t witnessed_ms; /* 0: unknown (times are claimed) */
	int has_person;
	uint8_t person[TL_PUB_LEN];
};

struct tl_dispute_line {
	char *doc; /* owned, NUL-terminated */
	int64_t their_amount;
	enum tl_reason reason;
	char *note; /* owned or NULL */
	size_t nblobs;
};

struct tl_stmt {
	char *id; /* owned, NUL-terminated */
	uint64_t version;
	uint64_t seq; /* in the supplier's feed */
	uint8_t leaf[TL_HASH_LEN];
	char leaf_hex[2 * TL_HASH_LEN + 1];
	size_t supersedes;    /* index into tl_state.stmts, SIZE_MAX if none */
	size_t superseded_by; /* index, SIZE_MAX if none */
	enum tl_stmt_status status;
	char currency[TL_STATE_STR_MAX + 1];
	char date[11]; /* the as-of date, YYYY-MM-DD */
	int64_t opening, closing;
	size_t nlines;
	size_t terms; /* index into tl_state.terms, SIZE_MAX: the defaults */
	uint64_t claimed_ms, witnessed_ms;
	uint64_t deadline_ms;
	enum tl_time_src deadline_src;
	int seen, viewed;
	uint64_t seen_seq; /* customer's seen receipt, when seen */
	/* The answer in force: the later valid confirm or dispute. */
	int answered;        /* 0 none, 1 confirm, 2 dispute */
	uint64_t answer_seq; /* in the customer's feed */
	int late;            /* answer time > deadline */
	int has_agreed;      /* confirmed with balance == closing */
	int64_t agreed_balance;
	int has_their_balance; /* disputed (or confirmed another balance) */
	int64_t their_balance;
	int closed;
	uint64_t close_seq;
	uint32_t escalation;           /* highest escalate level, 0 none */
	struct tl_dispute_line *lines; /* of the dispute in force; owned */
	size_t ndlines;
	struct tl_state_event *timeline; /* owned; by time, then role, then seq */
	size_t ntimeline;
	size_t timeline_dropped;
};

struct tl_finding {
	enum tl_finding_kind kind;
	enum tl_role feed;
	uint64_t seq;
	char msg[224]; /* a sentence: what, where, why */
};

/*
 * The result of tl_state_build. Owns everything it points to; independent
 * of the records once built. Free with tl_state_free.
 */
struct tl_state {
	uint64_t now_ms;
	int supplier_known;                /* 0: no statement and no hint; roles by origin order */
	char origin[2][TL_ORIGIN_LEN + 1]; /* [TL_ROLE_*]; "" when the feed is absent */
	uint64_t size[2];                  /* records read per feed */
	struct tl_terms in_force;          /* at now_ms */
	struct tl_terms *terms;            /* agreed terms, by accept time */
	size_t nterms;
	struct tl_proposal *proposals; /* valid proposals, both feeds, supplier's first */
	size_t nproposals;
	struct tl_stmt *stmts; /* in supplier seq order */
	size_t nstmts;
	size_t count[TL_STMT_CLOSED + 1]; /* statements per status */
	struct tl_finding *findings;
	size_t nfindings;
	size_t findings_dropped;
};

struct tl_state_builder;

/*
 * supplier_pk: the supplier's book key, or NULL to infer it. Copied.
 */
int tl_state_builder_new(struct tl_state_builder **out, const uint8_t *supplier_pk) TL_WUR;
void tl_state_builder_free(struct tl_state_builder *b);

/*
 * Adds the next record of one of the channel's two feeds (the feed is the
 * record's origin). rec is BORROWED: it must stay valid and unchanged until
 * the builder is freed. witnessed_ms: the entry's witnessed time, 0 unknown.
 * TL_EFORMAT: not a record; TL_ECHAIN: seq or prev does not follow the
 * feed's last record; TL_EINVAL: a third origin, or another channel;
 * TL_ETOOBIG: more than TL_STATE_ENTRIES_MAX records in the feed.
 * A failed add changes nothing.
 */
int tl_state_add(struct tl_state_builder *b, const uint8_t *rec, size_t len,
                 uint64_t witnessed_ms) TL_WUR;

/*
 * Evaluates the state at now_ms. Does not change the builder: it may be
 * called again (e.g. with another now_ms). *out is owned by the caller.
 * Problems in the feeds' contents are findings, never errors; errors are
 * TL_ENOMEM only.
 */
int tl_state_build(const struct tl_state_builder *b, uint64_t now_ms, struct tl_state **out) TL_WUR;
void tl_state_free(struct tl_state *s);

/* One feed as arrays (records in seq order); witnessed may be NULL. */
struct tl_state_feed {
	const uint8_t *const *recs;
	const size_t *lens;
	const uint64_t *witnessed;
	size_t n;
};

/* Convenience: builder over two feeds (either may have n == 0), build, free. */
int tl_state_compute(struct tl_state **out, const struct tl_state_feed *a,
                     const struct tl_state_feed *b, const uint8_t *supplier_pk,
                     uint64_t now_ms) TL_WUR;

/*
 * The canonical serialisation of a state, appended to out: a MessagePack
 * array ["tally/state/v1", now_ms, supplier_known, origin S, origin C,
 * size S, size C, terms in force, [agreed terms], [statements], [findings],
 * findings dropped, [proposals: [leaf, accepted, terms]]], every field in the order of the structs
 * above, absent values as nil, integers in shortest form (pack_* in state.c). And its SHA-256, so
 * two parties compare states byte for byte. Not yet in docs/protocol.md (to be added there; this
 * comment is the reference).
 */
int tl_state_serialise(const struct tl_state *s, struct tl_buf *out) TL_WUR;
int tl_state_digest(const struct tl_state *s, uint8_t out[TL_HASH_LEN]) TL_WUR;

/*
 * The bytes a person signs for a confirm or dispute: TL_PERSON_SIG_CONTEXT
 * || kind || "\n" || the canonical body map without its "person_sig" key
 * (the map header shrinks by one when the key is present). body must be a
 * canonical map (tl_mp_check_map). Appended to out.
 */
int tl_person_sig_message(struct tl_buf *out, const char *kind, size_t kind_len,
                          const uint8_t *body, size_t body_len) TL_WUR;

/*
 * Reads and checks a terms.propose body (canonical MessagePack map) as the
 * state machine does: *t filled (unilateral set, proposer and seqs zero).
 * TL_EFORMAT with the reason in why (a phrase: "has ...") otherwise.
 */
int tl_terms_parse(const uint8_t *body, size_t len, struct tl_terms *t, char *why,
                   size_t cap) TL_WUR;

/*
 * The first cycle date strictly after after_ms under t (00:00 local time of
 * the cycle day for month and week, the rule's minute for cron), in Unix
 * ms. Local time is UTC + tz_offset_min when tz_fixed, else UTC. Pure.
 * TL_EINVAL: t's cycle is not valid; TL_ENOTFOUND: a cron rule that
 * matches no minute in the next 5 years (e.g. "0 0 31 2 *").
 */
int tl_terms_next_cycle(const struct tl_terms *t, uint64_t after_ms, uint64_t *out) TL_WUR;

/* Checks a cron rule of the accepted subset (docs/protocol.md). 0 or -1. */
int tl_cron_valid(const char *rule, size_t len);
/* Parses a tz string as the terms do: 0, with *fixed and *offset_min; -1
 * when it is none of the accepted forms. */
int tl_tz_parse(const char *s, size_t len, int *fixed, int32_t *offset_min);

/*
 * The checks the state machine applies to a `statement` body (schema,
 * id, version, currency, period, lines, closing = opening + lines), for
 * writers that want to refuse what every reader would flag. 0, or
 * TL_EFORMAT with why ("has closing 5, but opening + lines = 4").
 */
int tl_statement_body_check(const uint8_t *body, size_t len, char *why, size_t cap) TL_WUR;

const char *tl_stmt_status_name(enum tl_stmt_status st);
const char *tl_procedure_name(enum tl_procedure p);
const char *tl_event_name(enum tl_event ev);
const char *tl_reason_name(enum tl_reason r);

#endif
