/*
 * fuzz_state.c — libFuzzer target for the channel state machine.
 *
 * The input is a small script, one entry per line:
 *     s|c KIND HOURS JSON
 * (supplier or customer feed, entry kind, claimed time in hours after T0,
 * body). In the JSON, $Sn and $Cn stand for the leaf hash (hex) of record n
 * of the supplier's or customer's feed, $Pn for person key n (0..3), and a
 * "person_sig":"$SIG" member is replaced by that person's real signature
 * over the body, so confirmations and disputes reach the authority checks.
 * Lines that do not make a valid entry are skipped.
 *
 * Properties besides "no crash":
 *   - determinism: the two feeds added feed by feed or interleaved give the
 *     same state digest (DESIGN §6: no message order decides state);
 *   - per-status counts add up to the number of statements;
 *   - evaluating later never un-closes or un-confirms a statement.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/state.h"
#include "node/tl_node.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define T0      1790000000000ull
#define MAXRECS 64

struct ffeed {
	struct tl_keypair kp;
	char origin[TL_ORIGIN_LEN + 1];
	uint8_t *recs[MAXRECS];
	size_t lens[MAXRECS];
	uint8_t leaf[MAXRECS][TL_HASH_LEN];
	size_t n;
};

static struct ffeed feeds[2];
static struct tl_keypair people[4];

static void setup(void)
{
	uint8_t seed[TL_SEED_LEN], id[TL_CHANNEL_LEN];

	if (tl_init() != 0)
		abort();
	for (int i = 0; i < 2; i++) {
		memset(seed, 1 + i, sizeof seed);
		if (tl_key_from_seed(&feeds[i].kp, seed) != 0)
			abort();
	}
	for (int i = 0; i < 4; i++) {
		memset(seed, 3 + i, sizeof seed);
		if (tl_key_from_seed(&people[i], seed) != 0)
			abort();
	}
	tl_channel_id(id, feeds[0].kp.pk, feeds[1].kp.pk, "default", 7);
	for (int i = 0; i < 2; i++)
		tl_origin_format(feeds[i].origin, feeds[i].kp.pk, id);
}

/* Expands $Sn, $Cn and $Pn into out (NUL-terminated); 0 on success. */
static int expand(const char *in, char *out, size_t cap)
{
	size_t o = 0;

	while (*in) {
		if (in[0] == '$' && (in[1] == 'S' || in[1] == 'C' || in[1] == 'P') && in[2] >= '0' &&
		    in[2] <= '9') {
			unsigned n = (unsigned)(in[2] - '0');
			const uint8_t *bytes;
			if (in[1] == 'P') {
				if (n >= 4)
					return -1;
				bytes = people[n].pk;
			} else {
				const struct ffeed *f = &feeds[in[1] == 'C'];
				if (n >= f->n)
					return -1;
				bytes = f->leaf[n];
			}
			if (o + 2 * TL_HASH_LEN + 1 > cap)
				return -1;
			tl_hex_encode(out + o, bytes, TL_HASH_LEN);
			o += 2 * TL_HASH_LEN;
			in += 3;
			continue;
		}
		if (o + 2 > cap)
			return -1;
		out[o++] = *in++;
	}
	out[o] = '\0';
	return 0;
}

/* Replaces "person_sig":"$SIG" by a real signature of the person named. */
static int sign_person(json_t *body, const char *kind, struct tl_buf *mp)
{
	json_t *sig = json_object_get(body, "person_sig");
	const char *who = json_string_value(json_object_get(body, "person"));
	uint8_t s[TL_SIG_LEN];
	char b64[128], err[128];
	struct tl_buf msg;
	int k = -1;

	if (!sig || !json_is_string(sig) || strcmp(json_string_value(sig), "$SIG") != 0 || !who)
		return 0;
	for (int i = 0; i < 4; i++) {
		char hex[2 * TL_PUB_LEN + 1];
		tl_hex_encode(hex, people[i].pk, TL_PUB_LEN);
		if (strcmp(hex, who) == 0)
			k = i;
	}
	if (k < 0)
		return 0;
	json_object_del(body, "person_sig");
	tl_buf_reset(mp);
	if (tl_json_to_mp(body, mp, err, sizeof err) != 0)
		return -1;
	tl_buf_init(&msg, TL_ENTRY_MAX + 64);
	if (tl_person_sig_message(&msg, kind, strlen(kind), mp->data, mp->len) != 0) {
		tl_buf_release(&msg);
		return -1;
	}
	tl_sign(s, msg.data, msg.len, people[k].sk);
	tl_buf_release(&msg);
	tl_b64_encode(b64, s, sizeof s);
	json_object_set_new(body, "person_sig", json_string(b64));
	return 0;
}

static void add_line(const char *line)
{
	char kind[40], js[4096];
	unsigned hours;
	int used = 0;
	struct ffeed *f;
	struct tl_buf mp, rec;
	json_t *body;
	json_error_t je;
	char err[128];
	static const uint8_t zero[TL_HASH_LEN];

	if ((line[0] != 's' && line[0] != 'c') || line[1] != ' ')
		return;
	f = &feeds[line[0] == 'c'];
	if (f->n == MAXRECS)
		return;
	if (sscanf(line + 2, "%39s %u %n", kind, &hours, &used) != 2 || used == 0)
		return;
	if (expand(line + 2 + used, js, sizeof js) != 0)
		return;
	body = json_loads(js, 0, &je);
	if (!body || !json_is_object(body)) {
		json_decref(body);
		return;
	}
	tl_buf_init(&mp, TL_ENTRY_MAX);
	tl_buf_init(&rec, TL_RECORD_MAX);
	if (sign_person(body, kind, &mp) == 0) {
		tl_buf_reset(&mp);
		if (tl_json_to_mp(body, &mp, err, sizeof err) == 0 &&
		    tl_entry_encode(&rec, f->origin, f->n, f->n ? f->leaf[f->n - 1] : zero,
		                    T0 + (uint64_t)hours * 3600000u, kind, strlen(kind), mp.data,
		                    mp.len) == 0 &&
		    tl_record_sign(&rec, f->kp.sk) == 0) {
			f->recs[f->n] = rec.data;
			f->lens[f->n] = rec.len;
			tl_record_leaf_hash(f->leaf[f->n], rec.data, rec.len);
			f->n++;
			rec.data = NULL;
		}
	}
	tl_buf_release(&rec);
	tl_buf_release(&mp);
	json_decref(body);
}

static void digest_of(int interleave, uint64_t now, uint8_t out[TL_HASH_LEN],
                      struct tl_state **keep)
{
	struct tl_state_builder *b;
	struct tl_state *st;
	size_t i[2] = {0, 0};

	if (tl_state_builder_new(&b, feeds[0].kp.pk) != 0)
		abort();
	while (i[0] < feeds[0].n || i[1] < feeds[1].n) {
		int w = i[0] < feeds[0].n ? 0 : 1;
		if (interleave && i[1] < feeds[1].n && (i[0] + i[1]) % 2)
			w = 1;
		if (!interleave && i[0] >= feeds[0].n)
			w = 1;
		if (tl_state_add(b, feeds[w].recs[i[w]], feeds[w].lens[i[w]], 0) != 0)
			abort(); /* every record here is well formed and chained */
		i[w]++;
	}
	if (tl_state_build(b, now, &st) != 0)
		abort();
	if (tl_state_digest(st, out) != 0)
		abort();
	size_t total = 0;
	for (size_t k = 0; k <= TL_STMT_CLOSED; k++)
		total += st->count[k];
	if (total != st->nstmts)
		abort();
	if (keep)
		*keep = st;
	else
		tl_state_free(st);
	tl_state_builder_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char *text, *line, *save = NULL;
	uint8_t d1[TL_HASH_LEN], d2[TL_HASH_LEN];
	struct tl_state *early, *late;
	uint64_t now = T0 + 30 * TL_DAY_MS;

	if (!ready) {
		setup();
		ready = 1;
	}
	if (size > 65536)
		return 0;
	text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		add_line(line);
	free(text);

	digest_of(0, now, d1, &early);
	digest_of(1, now, d2, NULL);
	if (memcmp(d1, d2, sizeof d1) != 0)
		abort();
	digest_of(0, now + 400 * TL_DAY_MS, d2, &late);
	for (size_t k = 0; k < early->nstmts; k++) {
		enum tl_stmt_status a = early->stmts[k].status, b = late->stmts[k].status;
		if ((a == TL_STMT_CLOSED || a == TL_STMT_CONFIRMED || a == TL_STMT_REISSUED) &&
		    b != a)
			abort();
	}
	tl_state_free(early);
	tl_state_free(late);
	for (int i = 0; i < 2; i++) {
		for (size_t k = 0; k < feeds[i].n; k++)
			free(feeds[i].recs[k]);
		feeds[i].n = 0;
	}
	return 0;
}
