/*
 * fuzz_wtime.c — libFuzzer target for witnessed time (consensus/wtime.h):
 * tl_wtime_build over arbitrary checkpoint notes and cosignature lines of
 * one feed, for a fixed origin and a fixed set of witness keys.
 *
 * A fuzzer cannot forge signatures, so the input is a script that this
 * harness turns into notes, signing what it is told to sign (and
 * remembering exactly which cosignatures are valid), plus raw note texts
 * taken as they are:
 *   byte 0      witnesses n = 1 + (b & 3), quorum k = (b >> 2) & 7 (may be 0
 *               or above n), 0x20: an alias of witness 0's key under another
 *               name (one key, one vote), 0x40: a type-0x01 key among the
 *               witnesses (ignored), 0x80: a verifier time (future cosigs)
 *   then ops    op % 4 == 3: a raw note: length byte, then that many bytes;
 *               otherwise a generated checkpoint note: size byte, flags byte
 *               (0x01 another root for that size, 0x02 signed by a key that
 *               is not the feed's, 0x04 a damaged feed signature, 0x08 the
 *               other feed's origin, 0x70: number of cosignature lines), and
 *               per cosignature: witness byte, 16-bit time, flags (0x01
 *               damaged signature, 0x02 time past TL_WTIME_TIME_MAX, 0x04
 *               time near 0).
 *
 * Properties besides "no crash":
 *   - existed_by(i) and absent_at(i), for every i, equal a brute-force
 *     computation from the definitions in wtime.h over the cosignatures
 *     the harness knows to be valid (raw notes and damaged lines count for
 *     nothing; sizes with two roots count for nothing);
 *   - monotone: absent_at(i) is non-decreasing in i; existed_by(i) <=
 *     existed_by(j) for i < j whenever existed_by(j) is known;
 *   - tl_wtime_existed_all agrees with existed_by (scales 1 and 1000);
 *   - the number of accepted checkpoints and of equivocations is right, and
 *     each fork names two accepted notes of its size with different roots;
 *   - order does not matter: the notes in reverse order give the same times;
 *   - honest witnesses (each one's valid cosignature times non-decreasing
 *     in checkpoint size), no equivocation and a majority quorum (2k > n):
 *     existed_by(i) >= absent_at(i) whenever both are known. (With a
 *     minority quorum or a witness signing an older size later this need
 *     not hold, and is not a bug: absent_at then says what the quorum saw.)
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/wtime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0       1790000000u
#define MAXNOTES 16
#define MAXCOSIG 4
#define NWIT     4
#define MAXI     260
#define UNK      UINT64_MAX

static struct tl_keypair feed_kp, other_kp, wit_kp[NWIT];
static char origin[TL_ORIGIN_LEN + 1], other_origin[TL_ORIGIN_LEN + 1];
static struct tl_vkey wit_vk[NWIT], alias_vk, badtype_vk;
static char wit_name[NWIT][32];

struct vote {
	size_t w;
	uint64_t size, time;
};

struct acc_note {
	size_t note; /* index in the notes given */
	uint64_t size;
	int alt; /* the other root */
};

struct run {
	char *notes[MAXNOTES];
	size_t lens[MAXNOTES];
	size_t n;
	struct acc_note acc[MAXNOTES];
	size_t nacc;
	struct vote votes[MAXNOTES * MAXCOSIG];
	size_t nvotes;
	int forked[256]; /* sizes with two roots among accepted notes */
};

static void setup(void)
{
	uint8_t seed[TL_SEED_LEN], ch[TL_CHANNEL_LEN];

	if (tl_init() != 0)
		abort();
	memset(seed, 1, sizeof seed);
	if (tl_key_from_seed(&feed_kp, seed) != 0)
		abort();
	memset(seed, 2, sizeof seed);
	if (tl_key_from_seed(&other_kp, seed) != 0)
		abort();
	tl_channel_id(ch, feed_kp.pk, other_kp.pk, "default", 7);
	tl_origin_format(origin, feed_kp.pk, ch);
	tl_origin_format(other_origin, other_kp.pk, ch);
	for (int i = 0; i < NWIT; i++) {
		memset(seed, 10 + i, sizeof seed);
		if (tl_key_from_seed(&wit_kp[i], seed) != 0)
			abort();
		snprintf(wit_name[i], sizeof wit_name[i], "witness%d.example", i);
		if (tl_vkey_from_pub(&wit_vk[i], wit_name[i], TL_SIGTYPE_COSIG, wit_kp[i].pk) != 0)
			abort();
	}
	if (tl_vkey_from_pub(&alias_vk, "alias.example", TL_SIGTYPE_COSIG, wit_kp[0].pk) != 0 ||
	    tl_vkey_from_pub(&badtype_vk, "ed25519.example", TL_SIGTYPE_ED25519, wit_kp[1].pk) != 0)
		abort();
}

struct rd {
	const uint8_t *p;
	size_t n;
};

static int rd_byte(struct rd *r, unsigned *v)
{
	if (r->n == 0)
		return -1;
	*v = *r->p++;
	r->n--;
	return 0;
}

static void root_of(uint8_t root[TL_HASH_LEN], uint64_t size, int alt)
{
	uint8_t in[9];

	for (int k = 0; k < 8; k++)
		in[k] = (uint8_t)(size >> (8 * k));
	in[8] = (uint8_t)alt;
	tl_sha256(root, in, sizeof in);
}

/* Damages one base64 character well inside a signature line's blob. */
static void damage(uint8_t *line, size_t len, size_t at)
{
	const uint8_t *b = memchr(line, ' ', len); /* after the em dash */
	b = b ? memchr(b + 1, ' ', len - (size_t)(b + 1 - line)) : NULL;
	if (!b)
		abort();
	uint8_t *c = (uint8_t *)b + 1 + at;
	*c = *c == 'A' ? 'B' : 'A';
}

/* One generated checkpoint note; 0, or -1 at the end of the input. */
static int gen_note(struct run *rn, struct rd *r, unsigned nw, uint64_t now)
{
	unsigned size, flags, nc;
	struct tl_checkpoint cp;
	struct tl_buf text, note;
	int ok_feed;

	if (rd_byte(r, &size) || rd_byte(r, &flags))
		return -1;
	memset(&cp, 0, sizeof cp);
	snprintf(cp.origin, sizeof cp.origin, "%s", flags & 0x08 ? other_origin : origin);
	cp.size = size;
	root_of(cp.root, size, flags & 1);
	tl_buf_init(&text, 4096);
	tl_buf_init(&note, 4096);
	if (tl_checkpoint_format(&cp, &text) != 0)
		abort();
	if (flags & 0x02) {
		if (tl_note_sign(&note, (const char *)text.data, text.len, other_origin, &other_kp))
			abort();
	} else if (flags & 0x08) {
		if (tl_note_sign(&note, (const char *)text.data, text.len, other_origin, &other_kp))
			abort();
	} else {
		if (tl_note_sign(&note, (const char *)text.data, text.len, origin, &feed_kp))
			abort();
	}
	if (flags & 0x04)
		damage(note.data + text.len + 1, note.len - text.len - 1, 40);
	ok_feed = !(flags & 0x0e);
	/* Cosignature lines, each on its own: tl_cosig_sign appends one. */
	nc = (flags >> 4) & 7;
	if (nc > MAXCOSIG)
		nc = MAXCOSIG;
	for (unsigned c = 0; c < nc; c++) {
		unsigned wb, t1, t2, cf;
		if (rd_byte(r, &wb) || rd_byte(r, &t1) || rd_byte(r, &t2) || rd_byte(r, &cf))
			break;
		size_t w = wb % nw;
		uint64_t t = (cf & 4) ? (t1 << 8 | t2) : T0 + (t1 << 8 | t2);
		if (cf & 2)
			t = TL_WTIME_TIME_MAX + 1 + (t1 << 8 | t2);
		size_t before = note.len;
		if (tl_cosig_sign(&note, (const char *)text.data, text.len, t, wit_name[w],
		                  &wit_kp[w]) != 0)
			abort();
		if (cf & 1)
			damage(note.data + before, note.len - before, 60);
		int valid = !(cf & 1) && t <= TL_WTIME_TIME_MAX &&
		            (now == 0 || t <= now || t - now <= TL_WTIME_SKEW_DEFAULT);
		if (valid && ok_feed)
			rn->votes[rn->nvotes++] = (struct vote){w, size, t};
	}
	if (ok_feed)
		rn->acc[rn->nacc++] = (struct acc_note){rn->n, size, flags & 1};
	rn->notes[rn->n] = (char *)note.data;
	rn->lens[rn->n] = note.len;
	rn->n++;
	note.data = NULL;
	tl_buf_release(&note);
	tl_buf_release(&text);
	return 0;
}

static int raw_note(struct run *rn, struct rd *r)
{
	unsigned len;

	if (rd_byte(r, &len))
		return -1;
	if (len > r->n)
		len = (unsigned)r->n;
	rn->notes[rn->n] = malloc(len + 1);
	if (!rn->notes[rn->n])
		abort();
	memcpy(rn->notes[rn->n], r->p, len);
	rn->lens[rn->n++] = len;
	r->p += len;
	r->n -= len;
	return 0;
}

static int forked_size(const struct run *rn, uint64_t size)
{
	int seen = -1;

	for (size_t a = 0; a < rn->nacc; a++)
		if (rn->acc[a].size == size) {
			if (seen >= 0 && seen != rn->acc[a].alt)
				return 1;
			seen = rn->acc[a].alt;
		}
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The definitions of wtime.h, by brute force. */
static uint64_t oracle(const struct run *rn, unsigned nw, unsigned k, uint64_t i, int existed)
{
	uint64_t v[NWIT];
	size_t known = 0;

	if (k == 0 || k > nw)
		return 0;
	for (size_t w = 0; w < nw; w++) {
		uint64_t best = UNK;
		for (size_t j = 0; j < rn->nvotes; j++) {
			const struct vote *vt = &rn->votes[j];
			if (vt->w != w || rn->forked[vt->size])
				continue;
			if (existed && vt->size > i && (best == UNK || vt->time < best))
				best = vt->time;
			if (!existed && vt->size <= i && (best == UNK || vt->time > best))
				best = vt->time;
		}
		if (best != UNK)
			v[known++] = best;
	}
	if (k > known)
		return 0;
	qsort(v, known, sizeof *v, cmp_u64);
	return existed ? v[k - 1] : v[known - k];
}

static int honest(const struct run *rn)
{
	for (size_t a = 0; a < rn->nvotes; a++)
		for (size_t b = 0; b < rn->nvotes; b++) {
			const struct vote *x = &rn->votes[a], *y = &rn->votes[b];
			if (x->w == y->w && x->size < y->size && x->time > y->time)
				return 0;
		}
	return 1;
}

static int has_issue(const struct tl_wtime *wt, enum tl_wtime_issue_kind kind)
{
	for (size_t i = 0; i < wt->issues_kept; i++)
		if (wt->issues[i].kind == kind)
			return 1;
	return 0;
}

static void check(struct run *rn, unsigned nw, unsigned k, int badtype, int alias, uint64_t now)
{
	struct tl_vkey vks[NWIT + 2];
	size_t nvk = 0;
	struct tl_wtime *wt = NULL, *rev = NULL;
	struct tl_wtime_opts o;
	const char *rnotes[MAXNOTES];
	size_t rlens[MAXNOTES], nforked = 0;
	uint64_t all[MAXI + 1], all_ms[MAXI + 1];

	if (badtype)
		vks[nvk++] = badtype_vk;
	for (unsigned w = 0; w < nw; w++)
		vks[nvk++] = wit_vk[w];
	if (alias)
		vks[nvk++] = alias_vk;
	o = (struct tl_wtime_opts){vks, nvk, k, TL_WTIME_SKEW_DEFAULT, now};
	if (tl_wtime_build(&wt, origin, (const char *const *)rn->notes, rn->lens, rn->n, &o) != 0)
		abort();
	for (size_t i = 0; i < rn->n; i++) {
		rnotes[i] = rn->notes[rn->n - 1 - i];
		rlens[i] = rn->lens[rn->n - 1 - i];
	}
	if (tl_wtime_build(&rev, origin, rnotes, rlens, rn->n, &o) != 0)
		abort();

	if (wt->nw != nw || wt->nnotes != rn->n || wt->ncheckpoints != rn->nacc)
		abort();
	if (!!badtype != has_issue(wt, TL_WT_WITNESS))
		abort();
	for (unsigned s = 0; s < 256; s++)
		nforked += (size_t)(rn->forked[s] = forked_size(rn, s));
	if (wt->nforks != nforked || rev->nforks != nforked)
		abort();
	for (size_t f = 0; f < wt->nforks; f++) {
		const struct tl_wtime_fork *fk = &wt->forks[f];
		int a = -1, b = -1;
		for (size_t x = 0; x < rn->nacc; x++) {
			if (rn->acc[x].note == fk->a)
				a = (int)x;
			if (rn->acc[x].note == fk->b)
				b = (int)x;
		}
		if (a < 0 || b < 0 || rn->acc[a].size != fk->size || rn->acc[b].size != fk->size ||
		    rn->acc[a].alt == rn->acc[b].alt ||
		    memcmp(fk->root_a, fk->root_b, TL_HASH_LEN) == 0)
			abort();
	}

	if (tl_wtime_existed_all(wt, all, MAXI + 1, 1) != 0 ||
	    tl_wtime_existed_all(wt, all_ms, MAXI + 1, 1000) != 0)
		abort();
	int fair = honest(rn) && nforked == 0 && k >= 1 && 2 * k > nw;
	uint64_t prev_a = 0, max_e = 0;
	for (uint64_t i = 0; i <= MAXI; i++) {
		uint64_t e = tl_wtime_existed_by(wt, i), a = tl_wtime_absent_at(wt, i);
		if (e != oracle(rn, nw, k, i, 1) || a != oracle(rn, nw, k, i, 0))
			abort();
		if (e != tl_wtime_existed_by(rev, i) || a != tl_wtime_absent_at(rev, i))
			abort(); /* the order of the notes changed the times */
		if (all[i] != e || all_ms[i] != e * 1000)
			abort();
		if (a < prev_a)
			abort();
		prev_a = a;
		if (e != 0 && max_e > e)
			abort(); /* an earlier entry existed later than this one */
		if (e > max_e)
			max_e = e;
		if (fair && e != 0 && a != 0 && e < a)
			abort();
	}
	tl_wtime_free(wt);
	tl_wtime_free(rev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	static struct run rn;
	struct rd r = {data, size};
	unsigned hdr, nw, k, op;
	uint64_t now;

	if (!ready) {
		setup();
		ready = 1;
	}
	if (rd_byte(&r, &hdr))
		return 0;
	nw = 1 + (hdr & 3);
	k = (hdr >> 2) & 7;
	now = hdr & 0x80 ? (uint64_t)T0 + 30000 : 0;
	memset(&rn, 0, sizeof rn);
	while (rn.n < MAXNOTES && rd_byte(&r, &op) == 0) {
		if (op % 4 == 3 ? raw_note(&rn, &r) : gen_note(&rn, &r, nw, now))
			break;
	}
	check(&rn, nw, k, hdr & 0x40, hdr & 0x20, now);
	for (size_t i = 0; i < rn.n; i++)
		free(rn.notes[i]);
	return 0;
}
