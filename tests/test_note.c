/* test_note.c — C2SP signed notes, vkeys, checkpoints, cosignatures and
 * tlog-proof files against the vectors in tests/vectors/notes/
 * (note_vectors.txt says where each comes from). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/tl_crypto.h"
#include "tests/harness.h"

#define NOTES "tests/vectors/notes/"
#define DASH  "\xe2\x80\x94"

/* Section 1: golang.org/x/mod sumdb/note. */
#define PN_SEED "810a1402d5146c8d84f2443330f54080ebf98ee17d9c74f6252fc5d5c7283173"
#define PN_VKEY "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
#define PN_TEXT                                                      \
	"If you think cryptography is the answer to your problem,\n" \
	"then you don't know what your problem is.\n"
#define PN_SIG                  \
	DASH " PeterNeumann "   \
	     "x08go/ZJkuBS9UG/" \
	     "SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
#define ER_VKEY "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
#define ER_SIG                                              \
	DASH " EnochRoot "                                  \
	     "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/" \
	     "5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

/* Section 4: sigsum-go checkpoint test; seed 0x11 || 31 * 0x00. */
#define SS_ORIGIN \
	"sigsum.org/v1/tree/e796172b92befd62d9dc67e41c2f5bc9d3100a3023b20b1ca40288dd1c679e69"
#define SS_PUB  "66e0b858e462a609e66fe71370c816d8846ff103d5499a22a7fec37fdbc424a7"
#define SS_VKEY SS_ORIGIN "+809da1a3+AWbguFjkYqYJ5m/nE3DIFtiEb/ED1UmaIqf+w3/bxCSn"
#define SS_TEXT SS_ORIGIN "\n10\nHA5HAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
#define SS_SIG                                                                             \
	DASH " " SS_ORIGIN " gJ2ho0n8F8olcerUF1FFdv235A/5as/coWrpLrtE7ovMeP5whgwouYExowG/" \
	     "lTznxu6OUGjjt5yJQ6bXtTcf718MqAQ=\n"

/* Section 6: generated deterministic vectors. */
#define LOG_SEED  "d06d65f61e2d263514e9b0afc2e4600d48d00c6c2163426a781a10bd46ca6246"
#define WIT_SEED  "75a62cb6afd72c087c6538a7064fbaea3c0e0b59c540a2f825104fd0178f7a10"
#define LOG_VKEY  "example.com/ledger-test+303f2c27+AcLZk8HI2i1QbsLNym594VwLDrGZ/O5QybfOmZZXxdA/"
#define WIT_VKEY  "witness.example.com/w-test+526c3c3f+BJBz38QxWAJCC61IBrppVosBrOf45i8mzCaIAZwSr3UD"
#define CP_TEXT   "example.com/ledger-test\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
#define CP_EXT    CP_TEXT "ext-line-1\n"
#define COSIG_MSG "cosignature/v1\ntime 1700000000\n" CP_TEXT
#define COSIG_ED25519                                                      \
	"5d382d71663a486ddb946e5a023fbff4c7849f9606e3d4b8343036e1900c88e7" \
	"173384454a637d5acc75322a10c7e4fe39b99510295335d9fb11940d7eba790f"
#define LOG_LINE                                                         \
	DASH " example.com/ledger-test "                                 \
	     "MD8sJxCr1TTjjtRT6uQ/bEx4TRQmoNJ3FPjVzkLqeXzOAChDkUlFijcv/" \
	     "nICIAD+5nWMiopD9pCHU3XpBTkmcJjf7gA=\n"
#define WIT_LINE                                                                                \
	DASH " witness.example.com/w-test "                                                     \
	     "Umw8PwAAAABlU/EAXTgtcWY6SG3blG5aAj+/9MeEn5YG49S4NDA24ZAMiOcXM4RFSmN9Wsx1MioQx+T+" \
	     "ObmVEClTNdn7EZQNfrp5Dw==\n"
#define LOG_LINE_EXT                                                              \
	DASH " example.com/ledger-test "                                          \
	     "MD8sJweiHdSVZcma9VWUk7LefTcXLiq36Iq90EPXAnVCTsT6rjogktdQa6+xEC81F+" \
	     "JkAuUQ1z4LysocA9cw1lbl3Q0=\n"
#define WIT_LINE_EXT                                                                               \
	DASH " witness.example.com/w-test "                                                        \
	     "Umw8PwAAAABlU/EAcrvA5dv5xQAsqDWZZE5U6jbq456s3IIQKOkxkjiiJ2AiXVEkYONLkyM72QETVyO0Wx/" \
	     "3YAoMML30J+qvdSFqCQ==\n"

/* ------------------------------------------------------------- helpers */

static void key_from_hex_seed(struct tl_keypair *kp, const char *hex)
{
	uint8_t seed[TL_SEED_LEN];

	assert_int_equal(th_unhex(seed, sizeof(seed), hex), TL_SEED_LEN);
	assert_int_equal(tl_key_from_seed(kp, seed), 0);
}

static void vkey(struct tl_vkey *vk, const char *s)
{
	assert_int_equal(tl_vkey_parse(vk, s, strlen(s)), 0);
}

static int parse(struct tl_note *n, const char *s)
{
	return tl_note_parse(n, s, strlen(s));
}

/* Parses s, expecting err, and checks a failed parse leaves nothing. */
static void parse_fails(const char *s, size_t len, int err)
{
	struct tl_note n;

	assert_int_equal(tl_note_parse(&n, s, len), err);
	assert_null(n.raw);
	assert_null(n.sigs);
	assert_int_equal(n.nsigs, 0);
	tl_note_release(&n);
}

static char *read_vec(const char *name, size_t *len)
{
	char path[256];
	char *s;

	snprintf(path, sizeof(path), NOTES "%s", name);
	s = th_read_file(path, len);
	assert_non_null(s);
	return s;
}

/* First line of a file, without its newline. */
static void first_line(const char *name, char *out, size_t cap)
{
	size_t len, n;
	char *s = read_vec(name, &len);

	n = strcspn(s, "\n");
	assert_true(n < cap);
	memcpy(out, s, n);
	out[n] = '\0';
	free(s);
}

/* ---------------------------------------------------------------- tests */

static void key_ids_and_vkeys(void **state)
{
	static const struct {
		const char *vkey;
		uint8_t type;
		const char *id;
	} cases[] = {
	        {"remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2", 0x04,
	         "da77ade7"},
	        {"TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6", 0x01, "7997405c"},
	        {"TEST+fdd2dbc7+BAcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6", 0x04, "fdd2dbc7"},
	        {PN_VKEY, 0x01, "c74f20a3"},
	        {ER_VKEY, 0x01, "af0cfe78"},
	        {"example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k", 0x01,
	         "530d903a"},
	        {SS_VKEY, 0x01, "809da1a3"},
	        {LOG_VKEY, 0x01, "303f2c27"},
	        {WIT_VKEY, 0x04, "526c3c3f"},
	};
	struct tl_vkey vk, again;
	struct tl_buf b;
	uint8_t id[4], want[4];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		vkey(&vk, cases[i].vkey);
		assert_int_equal(vk.type, cases[i].type);
		th_unhex(want, 4, cases[i].id);
		assert_memory_equal(vk.id, want, 4);
		tl_key_id(id, vk.name, vk.type, vk.pk);
		assert_memory_equal(id, want, 4);
		/* Format round trip is byte-identical. */
		tl_buf_init(&b, 1024);
		assert_int_equal(tl_vkey_format(&vk, &b), 0);
		assert_string_equal(tl_buf_cstr(&b), cases[i].vkey);
		tl_buf_release(&b);
		assert_int_equal(tl_vkey_from_pub(&again, vk.name, vk.type, vk.pk), 0);
		assert_memory_equal(&again, &vk, sizeof(vk));
	}
	/* The same key under both types (TEST) has different ids. */
	vkey(&vk, cases[1].vkey);
	vkey(&again, cases[2].vkey);
	assert_memory_equal(vk.pk, again.pk, TL_PUB_LEN);
	assert_memory_not_equal(vk.id, again.id, 4);
}

static void vkeys_malformed(void **state)
{
	static const char *const bad[] = {
	        "",
	        "PeterNeumann",
	        "PeterNeumann+c74f20a3",
	        "PeterNeumann+c74f20a3+",
	        "+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	        "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	        "PeterNeumann+c74f20a3x+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	        "PeterNeumann+c74f20g3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
	        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWAA==",
	        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW ",
	        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	        /* type 0x02 */
	        "PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
	};
	struct tl_vkey vk;
	size_t i;

	(void)state;
	memset(&vk, 0, sizeof(vk));
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(tl_vkey_parse(&vk, bad[i], strlen(bad[i])), 0);
	/* A wrong id for a well-formed key. */
	assert_int_equal(tl_vkey_parse(&vk,
	                               "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/"
	                               "LDE4izWy10TW",
	                               strlen(PN_VKEY)),
	                 TL_EKEY);
	assert_int_equal(tl_vkey_from_pub(&vk, "a b", 1, vk.pk), TL_EINVAL);
	assert_int_equal(tl_vkey_from_pub(&vk, "a+b", 1, vk.pk), TL_EINVAL);
	assert_int_equal(tl_vkey_from_pub(&vk, "ab", 2, vk.pk), TL_EINVAL);
}

static void xmod_and_c2sp_examples_verify(void **state)
{
	struct tl_vkey vk, er;
	struct tl_note n;
	char line[256];
	char *s;
	size_t len;

	(void)state;
	first_line("xmod-peterneumann.vkey", line, sizeof(line));
	vkey(&vk, line);
	s = read_vec("xmod-peterneumann.note", &len);
	assert_int_equal(tl_note_parse(&n, s, len), 0);
	assert_int_equal(n.text_len, strlen(PN_TEXT));
	assert_memory_equal(n.raw, PN_TEXT, n.text_len);
	assert_int_equal(n.nsigs, 1);
	assert_string_equal(n.sigs[0].name, "PeterNeumann");
	assert_int_equal(n.sigs[0].bloblen, 64);
	assert_int_equal(n.sigs[0].linelen, strlen(PN_SIG) - 1);
	assert_memory_equal(n.sigs[0].line, PN_SIG, n.sigs[0].linelen);
	assert_int_equal(tl_note_verify(&n, &vk), 0);
	vkey(&er, ER_VKEY);
	assert_int_equal(tl_note_verify(&n, &er), TL_ENOTFOUND);
	tl_note_release(&n);
	free(s);

	/* Both signers of section 1. */
	assert_int_equal(parse(&n, PN_TEXT "\n" PN_SIG ER_SIG), 0);
	assert_int_equal(n.nsigs, 2);
	assert_int_equal(tl_note_verify(&n, &vk), 0);
	assert_int_equal(tl_note_verify(&n, &er), 0);
	tl_note_release(&n);

	first_line("c2sp-example.vkey", line, sizeof(line));
	vkey(&vk, line);
	s = read_vec("c2sp-example.note", &len);
	assert_int_equal(tl_note_parse(&n, s, len), 0);
	assert_int_equal(tl_note_verify(&n, &vk), 0);
	tl_note_release(&n);
	free(s);
}

static void signatures_are_byte_identical(void **state)
{
	struct tl_keypair kp;
	struct tl_buf b;
	uint8_t seed[TL_SEED_LEN] = {0x11}, pub[TL_PUB_LEN];
	struct tl_vkey vk, made;
	struct tl_note n;

	(void)state;
	tl_buf_init(&b, TL_NOTE_MAX);
	key_from_hex_seed(&kp, PN_SEED);
	assert_int_equal(tl_note_sign(&b, PN_TEXT, strlen(PN_TEXT), "PeterNeumann", &kp), 0);
	assert_string_equal(tl_buf_cstr(&b), PN_TEXT "\n" PN_SIG);
	tl_key_wipe(&kp);

	/* sigsum-go: published checkpoint signature. */
	tl_buf_reset(&b);
	assert_int_equal(tl_key_from_seed(&kp, seed), 0);
	th_unhex(pub, sizeof(pub), SS_PUB);
	assert_memory_equal(kp.pk, pub, TL_PUB_LEN);
	vkey(&vk, SS_VKEY);
	assert_int_equal(tl_vkey_from_pub(&made, SS_ORIGIN, TL_SIGTYPE_ED25519, kp.pk), 0);
	assert_memory_equal(&made, &vk, sizeof(vk));
	assert_int_equal(tl_note_sign(&b, SS_TEXT, strlen(SS_TEXT), SS_ORIGIN, &kp), 0);
	assert_string_equal(tl_buf_cstr(&b), SS_TEXT "\n" SS_SIG);
	assert_int_equal(tl_note_parse(&n, (const char *)b.data, b.len), 0);
	assert_int_equal(tl_note_verify(&n, &vk), 0);
	tl_note_release(&n);
	tl_key_wipe(&kp);
	tl_buf_release(&b);
}

static void sigsum_checkpoint(void **state)
{
	struct tl_checkpoint cp;
	struct tl_buf b;
	struct tl_note n;
	struct tl_vkey vk;
	uint8_t root[TL_HASH_LEN] = {0x1c, 0x0e, 0x47};

	(void)state;
	vkey(&vk, SS_VKEY);
	assert_int_equal(parse(&n, SS_TEXT "\n" SS_SIG), 0);
	assert_int_equal(tl_note_verify(&n, &vk), 0);
	assert_int_equal(tl_checkpoint_parse(&cp, n.raw, n.text_len), 0);
	assert_string_equal(cp.origin, SS_ORIGIN);
	assert_true(cp.size == 10);
	assert_memory_equal(cp.root, root, TL_HASH_LEN);
	assert_int_equal(cp.nextensions, 0);
	tl_buf_init(&b, 4096);
	assert_int_equal(tl_checkpoint_format(&cp, &b), 0);
	assert_string_equal(tl_buf_cstr(&b), SS_TEXT);
	tl_buf_release(&b);
	tl_note_release(&n);
}

static void generated_cosigned_checkpoint(void **state)
{
	struct tl_keypair log, wit;
	struct tl_vkey lvk, wvk, made;
	struct tl_checkpoint cp;
	struct tl_note n;
	struct tl_buf b;
	uint8_t sig[TL_SIG_LEN], want[TL_SIG_LEN];
	uint64_t t = 0;
	char *s;
	size_t len;

	(void)state;
	key_from_hex_seed(&log, LOG_SEED);
	key_from_hex_seed(&wit, WIT_SEED);
	vkey(&lvk, LOG_VKEY);
	vkey(&wvk, WIT_VKEY);
	assert_int_equal(tl_vkey_from_pub(&made, "example.com/ledger-test", 1, log.pk), 0);
	assert_memory_equal(&made, &lvk, sizeof(made));
	assert_int_equal(tl_vkey_from_pub(&made, "witness.example.com/w-test", 4, wit.pk), 0);
	assert_memory_equal(&made, &wvk, sizeof(made));

	/* The Ed25519 signature inside the cosignature, over the message. */
	tl_sign(sig, (const uint8_t *)COSIG_MSG, strlen(COSIG_MSG), wit.sk);
	th_unhex(want, sizeof(want), COSIG_ED25519);
	assert_memory_equal(sig, want, TL_SIG_LEN);

	/* Signing reproduces the file byte for byte. */
	tl_buf_init(&b, TL_NOTE_MAX);
	assert_int_equal(
	        tl_note_sign(&b, CP_TEXT, strlen(CP_TEXT), "example.com/ledger-test", &log), 0);
	assert_int_equal(tl_cosig_sign(&b, CP_TEXT, strlen(CP_TEXT), 1700000000,
	                               "witness.example.com/w-test", &wit),
	                 0);
	s = read_vec("cosigned-checkpoint.txt", &len);
	assert_int_equal(b.len, len);
	assert_memory_equal(b.data, s, len);
	assert_string_equal(s, CP_TEXT "\n" LOG_LINE WIT_LINE);

	assert_int_equal(tl_note_parse(&n, s, len), 0);
	assert_int_equal(tl_note_verify(&n, &lvk), 0);
	assert_int_equal(tl_cosig_verify(&n, &wvk, &t), 0);
	assert_true(t == 1700000000);
	/* Each key verifies only its own kind of line. */
	assert_int_equal(tl_note_verify(&n, &wvk), TL_EINVAL);
	assert_int_equal(tl_cosig_verify(&n, &lvk, &t), TL_EINVAL);
	assert_int_equal(tl_checkpoint_parse(&cp, n.raw, n.text_len), 0);
	assert_string_equal(cp.origin, "example.com/ledger-test");
	assert_true(cp.size == 8);
	tl_note_release(&n);
	free(s);

	/* The extension-line variant: the extension line is signed too. */
	tl_buf_reset(&b);
	assert_int_equal(tl_note_sign(&b, CP_EXT, strlen(CP_EXT), "example.com/ledger-test", &log),
	                 0);
	assert_int_equal(tl_cosig_sign(&b, CP_EXT, strlen(CP_EXT), 1700000000,
	                               "witness.example.com/w-test", &wit),
	                 0);
	assert_string_equal(tl_buf_cstr(&b), CP_EXT "\n" LOG_LINE_EXT WIT_LINE_EXT);
	assert_int_equal(tl_note_parse(&n, (const char *)b.data, b.len), 0);
	assert_int_equal(tl_note_verify(&n, &lvk), 0);
	assert_int_equal(tl_cosig_verify(&n, &wvk, &t), 0);
	assert_int_equal(tl_checkpoint_parse(&cp, n.raw, n.text_len), 0);
	assert_int_equal(cp.nextensions, 1);
	tl_note_release(&n);

	/* Timestamps beyond 2^63 - 1 are refused. */
	assert_int_equal(tl_cosig_sign(&b, CP_TEXT, strlen(CP_TEXT), (uint64_t)1 << 63, "w", &wit),
	                 TL_EINVAL);
	tl_buf_release(&b);
	tl_key_wipe(&log);
	tl_key_wipe(&wit);
}

static void cosignature_field_layout(void **state)
{
	static const char note[] =
	        CP_TEXT "\n" DASH " remora.n621.de "
	                "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/"
	                "iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==\n";
	const uint8_t id[4] = {0x64, 0x68, 0x46, 0xb9};
	struct tl_note n;
	uint64_t t = 0;
	int k;

	(void)state;
	assert_int_equal(parse(&n, note), 0);
	assert_int_equal(n.nsigs, 1);
	assert_memory_equal(n.sigs[0].id, id, 4);
	assert_int_equal(n.sigs[0].bloblen, 72);
	for (k = 0; k < 8; k++)
		t = t << 8 | n.sigs[0].blob[k];
	assert_true(t == 1727964367);
	tl_note_release(&n);
}

static void leaf5_tlog_proof(void **state)
{
	static const uint8_t data[] = {0x40, 0x41, 0x42, 0x43};
	struct tl_tlog_proof *p = malloc(sizeof(*p));
	struct tl_vkey lvk, wvk;
	uint8_t leaf[TL_HASH_LEN];
	uint64_t t;
	struct tl_buf b;
	char *s;
	size_t len;

	(void)state;
	assert_non_null(p);
	vkey(&lvk, LOG_VKEY);
	vkey(&wvk, WIT_VKEY);
	s = read_vec("leaf5.tlog-proof", &len);
	assert_int_equal(tl_tlog_proof_parse(p, s, len), 0);
	assert_null(p->extra);
	assert_true(p->index == 5);
	assert_int_equal(p->nproof, 3);
	assert_true(p->cp.size == 8);
	assert_string_equal(p->cp.origin, "example.com/ledger-test");
	assert_int_equal(tl_note_verify(&p->note, &lvk), 0);
	assert_int_equal(tl_cosig_verify(&p->note, &wvk, &t), 0);
	assert_true(t == 1700000000);
	tl_merkle_leaf_hash(leaf, data, sizeof(data));
	assert_int_equal(tl_merkle_verify_inclusion(leaf, p->index, p->cp.size,
	                                            (const uint8_t(*)[TL_HASH_LEN])p->proof,
	                                            p->nproof, p->cp.root),
	                 0);
	/* Another leaf or index does not. */
	assert_int_equal(tl_merkle_verify_inclusion(leaf, 4, p->cp.size,
	                                            (const uint8_t(*)[TL_HASH_LEN])p->proof,
	                                            p->nproof, p->cp.root),
	                 TL_EPROOF);
	leaf[0] ^= 1;
	assert_int_equal(tl_merkle_verify_inclusion(leaf, p->index, p->cp.size,
	                                            (const uint8_t(*)[TL_HASH_LEN])p->proof,
	                                            p->nproof, p->cp.root),
	                 TL_EPROOF);

	/* Formatting the parts gives the file back. */
	tl_buf_init(&b, 2 * TL_NOTE_MAX);
	assert_int_equal(tl_tlog_proof_format(&b, NULL, 0, p->index,
	                                      (const uint8_t(*)[TL_HASH_LEN])p->proof, p->nproof,
	                                      p->note.raw, strlen(p->note.raw)),
	                 0);
	assert_int_equal(b.len, len);
	assert_memory_equal(b.data, s, len);
	tl_tlog_proof_release(p);

	/* With extra data, round trip through parse. */
	tl_buf_reset(&b);
	assert_int_equal(tl_tlog_proof_parse(p, s, len), 0);
	{
		struct tl_tlog_proof *q = malloc(sizeof(*q));

		assert_non_null(q);
		assert_int_equal(tl_tlog_proof_format(&b, data, sizeof(data), 5,
		                                      (const uint8_t(*)[TL_HASH_LEN])p->proof,
		                                      p->nproof, p->note.raw, strlen(p->note.raw)),
		                 0);
		assert_non_null(strstr(tl_buf_cstr(&b), "\nextra QEFCQw==\nindex 5\n"));
		assert_int_equal(tl_tlog_proof_parse(q, (const char *)b.data, b.len), 0);
		assert_int_equal(q->extra_len, 4);
		assert_memory_equal(q->extra, data, 4);
		tl_tlog_proof_release(q);
		free(q);
	}
	tl_tlog_proof_release(p);
	tl_buf_release(&b);
	free(s);
	free(p);
}

static void tampered_notes_fail(void **state)
{
	struct tl_vkey lvk, wvk, other;
	struct tl_note n;
	struct tl_keypair kp;
	uint64_t t;
	char *s, *c;
	size_t len;

	(void)state;
	vkey(&lvk, LOG_VKEY);
	vkey(&wvk, WIT_VKEY);
	s = read_vec("cosigned-checkpoint.txt", &len);

	/* Text changed: both signatures fail. */
	c = strdup(s);
	assert_non_null(c);
	c[24] = '9'; /* size line "8" -> "9" */
	assert_int_equal(parse(&n, c), 0);
	assert_int_equal(tl_note_verify(&n, &lvk), TL_ESIG);
	assert_int_equal(tl_cosig_verify(&n, &wvk, &t), TL_ESIG);
	tl_note_release(&n);
	free(c);

	/* Cosignature timestamp changed. */
	c = strdup(s);
	assert_non_null(c);
	{
		char *p = strstr(c, "Umw8PwAAAABlU/EA");

		assert_non_null(p);
		p[15] = 'B'; /* time + 1 */
	}
	assert_int_equal(parse(&n, c), 0);
	assert_int_equal(tl_note_verify(&n, &lvk), 0);
	assert_int_equal(tl_cosig_verify(&n, &wvk, &t), TL_ESIG);
	tl_note_release(&n);
	free(c);

	/* Signature bytes changed. */
	c = strdup(s);
	assert_non_null(c);
	{
		char *p = strstr(c, "MD8sJxCr1");

		assert_non_null(p);
		p[20] = p[20] == 'A' ? 'B' : 'A';
	}
	assert_int_equal(parse(&n, c), 0);
	assert_int_equal(tl_note_verify(&n, &lvk), TL_ESIG);
	tl_note_release(&n);
	free(c);

	/* Unknown key; same name with another key; same key, other name. */
	assert_int_equal(parse(&n, s), 0);
	assert_int_equal(tl_key_generate(&kp), 0);
	assert_int_equal(tl_vkey_from_pub(&other, "example.com/ledger-test", 1, kp.pk), 0);
	assert_int_equal(tl_note_verify(&n, &other), TL_ENOTFOUND);
	assert_int_equal(tl_vkey_from_pub(&other, "example.com/other", 1, lvk.pk), 0);
	assert_int_equal(tl_note_verify(&n, &other), TL_ENOTFOUND);
	tl_note_release(&n);
	tl_key_wipe(&kp);

	/* A second, bad line claiming the same key rejects the note. */
	{
		struct tl_buf b;

		tl_buf_init(&b, TL_NOTE_MAX);
		assert_int_equal(tl_buf_add(&b, s, len), 0);
		assert_int_equal(tl_buf_adds(&b, DASH
		                             " example.com/ledger-test "
		                             "MD8sJwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		                             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"),
		                 0);
		assert_int_equal(tl_note_parse(&n, (const char *)b.data, b.len), 0);
		assert_int_equal(tl_note_verify(&n, &lvk), TL_ESIG);
		tl_note_release(&n);
		tl_buf_release(&b);
	}
	free(s);
}

static void malformed_notes_fail(void **state)
{
	static const struct {
		const char *note;
		int err;
	} cases[] = {
	        {"", TL_EFORMAT},
	        {"\n", TL_EFORMAT},
	        {"text\n", TL_EFORMAT},
	        {"text\n\n", TL_EFORMAT},                                   /* no signature */
	        {"text\n" DASH " k AAAAAAA=\n", TL_EFORMAT},                /* no blank line */
	        {"text\n\n" DASH " k AAAAAAA=", TL_EFORMAT},                /* no final newline */
	        {"text\n\n- k AAAAAAA=\n", TL_EFORMAT},                     /* hyphen */
	        {"text\n\n\xe2\x80\x93 k AAAAAAA=\n", TL_EFORMAT},          /* en dash */
	        {"text\n\n" DASH "k AAAAAAA=\n", TL_EFORMAT},               /* no space */
	        {"text\n\n" DASH "  AAAAAAA=\n", TL_EFORMAT},               /* empty name */
	        {"text\n\n" DASH " k\n", TL_EFORMAT},                       /* no signature */
	        {"text\n\n" DASH " k \n", TL_EFORMAT},                      /* empty signature */
	        {"text\n\n" DASH " k AAAAAA==\n", TL_EFORMAT},              /* 4 bytes: id only */
	        {"text\n\n" DASH " k AAAAAAA\n", TL_EFORMAT},               /* bad padding */
	        {"text\n\n" DASH " k AAAAAAB=\n", TL_EFORMAT},              /* non-canonical */
	        {"text\n\n" DASH " k AAAA AAA=\n", TL_EFORMAT},             /* space */
	        {"text\n\n" DASH " k+x AAAAAAA=\n", TL_EFORMAT},            /* '+' in name */
	        {"text\n\n" DASH " k\xc2\xa0x AAAAAAA=\n", TL_EFORMAT},     /* NBSP in name */
	        {"text\n\n" DASH " k\xe3\x80\x80x AAAAAAA=\n", TL_EFORMAT}, /* ideographic space */
	        {"text\n\n" DASH " k AAAAAAA=\n\n", TL_EFORMAT},            /* blank after sigs */
	        {"text\n\n" DASH " k AAAAAAA=\nextra\n", TL_EFORMAT},       /* not a sig line */
	        {"te\txt\n\n" DASH " k AAAAAAA=\n", TL_EFORMAT},            /* control char */
	        {"te\rxt\n\n" DASH " k AAAAAAA=\n", TL_EFORMAT},
	        {"te\xffxt\n\n" DASH " k AAAAAAA=\n", TL_EFORMAT}, /* bad UTF-8 */
	        {"text\n\n\xe2\x80 k AAAAAAA=\n", TL_EFORMAT},     /* truncated dash */
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		parse_fails(cases[i].note, strlen(cases[i].note), cases[i].err);
	/* An embedded NUL is a control character. */
	parse_fails("te\0xt\n\n" DASH " k AAAAAAA=\n", 20, TL_EFORMAT);
}

static void note_limits(void **state)
{
	struct tl_note n;
	struct tl_buf b;
	char *big;
	int i;

	(void)state;
	tl_buf_init(&b, 2 * TL_NOTE_MAX);
	/* TL_NOTE_MAX_SIGS signatures parse, one more does not. */
	assert_int_equal(tl_buf_adds(&b, "text\n\n"), 0);
	for (i = 0; i < TL_NOTE_MAX_SIGS; i++)
		assert_int_equal(tl_buf_printf(&b, DASH " k%d AAAAAAA=\n", i), 0);
	assert_int_equal(tl_note_parse(&n, (const char *)b.data, b.len), 0);
	assert_int_equal(n.nsigs, TL_NOTE_MAX_SIGS);
	assert_string_equal(n.sigs[TL_NOTE_MAX_SIGS - 1].name, "k63");
	tl_note_release(&n);
	assert_int_equal(tl_buf_adds(&b, DASH " k AAAAAAA=\n"), 0);
	parse_fails((const char *)b.data, b.len, TL_ETOOBIG);

	/* Size: a note of exactly TL_NOTE_MAX bytes parses, one more does not. */
	big = malloc(TL_NOTE_MAX + 2);
	assert_non_null(big);
	memset(big, 'a', TL_NOTE_MAX + 1);
	{
		static const char tail[] = "\n\n" DASH " k AAAAAAA=\n";
		size_t tl = strlen(tail);

		memcpy(big + TL_NOTE_MAX - tl, tail, tl);
		assert_int_equal(tl_note_parse(&n, big, TL_NOTE_MAX), 0);
		assert_int_equal(n.text_len, TL_NOTE_MAX - tl + 1);
		tl_note_release(&n);
		memmove(big + 1, big, TL_NOTE_MAX);
		parse_fails(big, TL_NOTE_MAX + 1, TL_ETOOBIG);
	}
	free(big);

	/* Signature blobs: 128 bytes including the id are kept; 129 parse as
	 * an unusable (ignored) signature: bloblen 0. */
	{
		uint8_t blob[TL_NOTE_SIG_MAX + 1] = {0};
		char enc[256];

		tl_b64_encode(enc, blob, TL_NOTE_SIG_MAX);
		tl_buf_reset(&b);
		assert_int_equal(tl_buf_printf(&b, "t\n\n" DASH " k %s\n", enc), 0);
		assert_int_equal(tl_note_parse(&n, (const char *)b.data, b.len), 0);
		assert_int_equal(n.sigs[0].bloblen, TL_NOTE_SIG_MAX - 4);
		tl_note_release(&n);
		tl_b64_encode(enc, blob, TL_NOTE_SIG_MAX + 1);
		tl_buf_reset(&b);
		assert_int_equal(tl_buf_printf(&b, "t\n\n" DASH " k %s\n", enc), 0);
		assert_int_equal(tl_note_parse(&n, (const char *)b.data, b.len), 0);
		assert_int_equal(n.sigs[0].bloblen, 0);
		tl_note_release(&n);
	}

	/* Unknown signature types are kept; the text may hold empty lines. */
	assert_int_equal(parse(&n, "a\n\nb\n\n" DASH " k AAAAAAA=\n"), 0);
	assert_int_equal(n.text_len, 5);
	assert_int_equal(n.sigs[0].bloblen, 1);
	tl_note_release(&n);
	tl_buf_release(&b);
}

static void sign_refuses_bad_input(void **state)
{
	struct tl_keypair kp;
	struct tl_buf b;

	(void)state;
	assert_int_equal(tl_key_generate(&kp), 0);
	tl_buf_init(&b, TL_NOTE_MAX);
	assert_int_equal(tl_note_sign(&b, "no newline", 10, "k", &kp), TL_EINVAL);
	assert_int_equal(tl_note_sign(&b, "", 0, "k", &kp), TL_EINVAL);
	assert_int_equal(tl_note_sign(&b, "x\n", 2, "a b", &kp), TL_EINVAL);
	assert_int_equal(tl_note_sign(&b, "x\n", 2, "a+b", &kp), TL_EINVAL);
	assert_int_equal(tl_note_sign(&b, "x\n", 2, "", &kp), TL_EINVAL);
	assert_int_equal(tl_note_sign(&b, "x\ty\n", 4, "k", &kp), TL_EINVAL);
	assert_int_equal(tl_cosig_sign(&b, "x", 1, 1, "k", &kp), TL_EINVAL);
	assert_int_equal(b.len, 0);
	/* A buffer too small is left as it was. */
	tl_buf_release(&b);
	tl_buf_init(&b, 40);
	assert_int_equal(tl_buf_adds(&b, "keep"), 0);
	assert_int_equal(tl_note_sign(&b, "x\n", 2, "k", &kp), TL_ETOOBIG);
	assert_int_equal(b.len, 4);
	tl_buf_release(&b);
	tl_key_wipe(&kp);
}

static void checkpoints_strict(void **state)
{
	static const struct {
		const char *text;
		int ok;
	} cases[] = {
	        {"o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 1},
	        {"o\n18446744073709551615\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 1},
	        {"o p+q\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\next\n", 1},
	        {"o\n18446744073709551616\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 0},
	        {"o\n01\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 0},
	        {"o\n-1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 0},
	        {"o\n 1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 0},
	        {"\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 0},
	        {"o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", 0},
	        {"o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuA==\n", 0},
	        {"o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=\n", 0},
	        {"o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n", 0},
	        {"o\n1\n", 0},
	        {"o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\n", 0},
	        {"o\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n\next\n", 0},
	        {"o\x01\n1\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n", 0},
	};
	static const char tail[] = "\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n";
	struct tl_checkpoint cp;
	char origin[TL_ORIGIN_TEXT_MAX + 2 + 64];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = tl_checkpoint_parse(&cp, cases[i].text, strlen(cases[i].text));

		if (cases[i].ok)
			assert_int_equal(rc, 0);
		else
			assert_int_not_equal(rc, 0);
	}
	/* Origin length: TL_ORIGIN_TEXT_MAX bytes fit, one more does not. */
	memset(origin, 'o', sizeof(origin));
	memcpy(origin + TL_ORIGIN_TEXT_MAX, tail, strlen(tail));
	assert_int_equal(tl_checkpoint_parse(&cp, origin, TL_ORIGIN_TEXT_MAX + strlen(tail)), 0);
	assert_int_equal(strlen(cp.origin), TL_ORIGIN_TEXT_MAX);
	memmove(origin + 1, origin, TL_ORIGIN_TEXT_MAX + strlen(tail));
	assert_int_equal(tl_checkpoint_parse(&cp, origin, TL_ORIGIN_TEXT_MAX + 1 + strlen(tail)),
	                 TL_ETOOBIG);
}

static void tlog_proofs_strict(void **state)
{
	static const char note[] = CP_TEXT "\n" LOG_LINE;
	static const char h[] = "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=\n";
	static const char *const bad[] = {
	        "c2sp.org/tlog-proof@v2\nindex 5\n\n" CP_TEXT "\n" LOG_LINE,
	        "c2sp.org/tlog-proof@v1\nindex 05\n\n" CP_TEXT "\n" LOG_LINE,
	        "c2sp.org/tlog-proof@v1\nindex\n\n" CP_TEXT "\n" LOG_LINE,
	        "c2sp.org/tlog-proof@v1\nextra \nindex 5\n\n" CP_TEXT "\n" LOG_LINE,
	        "c2sp.org/tlog-proof@v1\nextra QEFCQw\nindex 5\n\n" CP_TEXT "\n" LOG_LINE,
	        "c2sp.org/tlog-proof@v1\nindex 5\nQEFCQw==\n\n" CP_TEXT "\n" LOG_LINE,
	        "c2sp.org/tlog-proof@v1\nindex 5\n" CP_TEXT "\n" LOG_LINE,
	        "c2sp.org/tlog-proof@v1\nindex 5\n\n",
	        "c2sp.org/tlog-proof@v1\nindex 5\n\n" CP_TEXT,
	        "c2sp.org/tlog-proof@v1\nindex 5\n\nnot a\ncheckpoint\n\n" LOG_LINE,
	        "c2sp.org/tlog-proof@v1",
	        "",
	};
	struct tl_tlog_proof *p = malloc(sizeof(*p));
	struct tl_buf b;
	size_t i;
	int k;

	(void)state;
	assert_non_null(p);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_not_equal(tl_tlog_proof_parse(p, bad[i], strlen(bad[i])), 0);
		assert_null(p->extra);
		assert_null(p->note.raw);
	}
	/* TL_MERKLE_MAX_PROOF hashes parse, one more does not. */
	tl_buf_init(&b, 2 * TL_NOTE_MAX);
	assert_int_equal(tl_buf_adds(&b, "c2sp.org/tlog-proof@v1\nindex 0\n"), 0);
	for (k = 0; k < TL_MERKLE_MAX_PROOF; k++)
		assert_int_equal(tl_buf_adds(&b, h), 0);
	assert_int_equal(tl_buf_addc(&b, '\n'), 0);
	assert_int_equal(tl_buf_adds(&b, note), 0);
	assert_int_equal(tl_tlog_proof_parse(p, (const char *)b.data, b.len), 0);
	assert_int_equal(p->nproof, TL_MERKLE_MAX_PROOF);
	tl_tlog_proof_release(p);
	tl_buf_reset(&b);
	assert_int_equal(tl_buf_adds(&b, "c2sp.org/tlog-proof@v1\nindex 0\n"), 0);
	for (k = 0; k <= TL_MERKLE_MAX_PROOF; k++)
		assert_int_equal(tl_buf_adds(&b, h), 0);
	assert_int_equal(tl_buf_addc(&b, '\n'), 0);
	assert_int_equal(tl_buf_adds(&b, note), 0);
	assert_int_equal(tl_tlog_proof_parse(p, (const char *)b.data, b.len), TL_ETOOBIG);
	tl_buf_release(&b);

	/* Formatting refuses what it could not parse back. */
	tl_buf_init(&b, 2 * TL_NOTE_MAX);
	assert_int_equal(tl_tlog_proof_format(&b, NULL, 0, 1, NULL, 0, CP_TEXT, strlen(CP_TEXT)),
	                 TL_EFORMAT);
	assert_int_equal(tl_tlog_proof_format(&b, NULL, 0, 1, NULL, TL_MERKLE_MAX_PROOF + 1, note,
	                                      strlen(note)),
	                 TL_EINVAL);
	assert_int_equal(b.len, 0);
	tl_buf_release(&b);
	free(p);
}

/*
 * signed-note: signatures from unknown keys MUST be ignored, however long
 * (post-quantum signatures run to kilobytes). A 4,000-byte signature line
 * by an unknown key does not fail the note, is never accepted, and the
 * known key's signature next to it still verifies. Bad base64 in a long
 * line is still an error.
 */
static void long_unknown_signature_ignored(void **state)
{
	struct tl_vkey vk;
	struct tl_note n;
	static uint8_t blob[4000];
	char b64[5400 + 1];
	char *text = malloc(16000);

	(void)state;
	vkey(&vk, SS_VKEY);
	memset(blob, 0x5a, sizeof blob);
	tl_b64_encode(b64, blob, sizeof blob);
	snprintf(text, 16000, "%s\n%s\xe2\x80\x94 pq.example/key %s\n", SS_TEXT, SS_SIG, b64);
	assert_int_equal(parse(&n, text), 0);
	assert_int_equal((int)n.nsigs, 2);
	assert_int_equal((int)n.sigs[1].bloblen, 0);
	assert_memory_equal(n.sigs[1].id, blob, 4);
	assert_int_equal(tl_note_verify(&n, &vk), 0);
	tl_note_release(&n);
	/* The same line with one character that is not base64. */
	b64[100] = '*';
	snprintf(text, 16000, "%s\n%s\xe2\x80\x94 pq.example/key %s\n", SS_TEXT, SS_SIG, b64);
	assert_int_equal(parse(&n, text), TL_EFORMAT);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(key_ids_and_vkeys),
	        cmocka_unit_test(vkeys_malformed),
	        cmocka_unit_test(xmod_and_c2sp_examples_verify),
	        cmocka_unit_test(signatures_are_byte_identical),
	        cmocka_unit_test(sigsum_checkpoint),
	        cmocka_unit_test(generated_cosigned_checkpoint),
	        cmocka_unit_test(cosignature_field_layout),
	        cmocka_unit_test(leaf5_tlog_proof),
	        cmocka_unit_test(tampered_notes_fail),
	        cmocka_unit_test(malformed_notes_fail),
	        cmocka_unit_test(note_limits),
	        cmocka_unit_test(sign_refuses_bad_input),
	        cmocka_unit_test(checkpoints_strict),
	        cmocka_unit_test(tlog_proofs_strict),
	        cmocka_unit_test(long_unknown_signature_ignored),
	};

	if (tl_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
