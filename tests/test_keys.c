/* test_keys.c — SHA-256, Ed25519, encrypted key files, passphrase source. */
#include <dirent.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto/tl_crypto.h"
#include "tests/harness.h"

#define OPS  crypto_pwhash_OPSLIMIT_MIN
#define MEM  crypto_pwhash_MEMLIMIT_MIN
#define PASS "correct horse battery staple"

struct fixture {
	char *dir;
	char path[512];
	struct tl_keypair kp;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f)
		return -1;
	f->dir = th_tmpdir("keys");
	if (!f->dir)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/book.key", f->dir);
	if (tl_key_generate(&f->kp) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	th_rmtree(f->dir);
	free(f->dir);
	tl_key_wipe(&f->kp);
	free(f);
	return 0;
}

static void write_key(struct fixture *f)
{
	assert_int_equal(
	        tl_keyfile_write(f->path, &f->kp, "acme books", PASS, strlen(PASS), OPS, MEM), 0);
}

/* Replaces the first occurrence of `from` in the key file with `to`. */
static void edit_file(const char *path, const char *from, const char *to)
{
	size_t len, fl = strlen(from), tl = strlen(to);
	char *s = th_read_file(path, &len), *p, *out;

	assert_non_null(s);
	p = strstr(s, from);
	assert_non_null(p);
	out = malloc(len - fl + tl + 1);
	assert_non_null(out);
	memcpy(out, s, (size_t)(p - s));
	memcpy(out + (p - s), to, tl);
	memcpy(out + (p - s) + tl, p + fl, len - (size_t)(p - s) - fl);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(th_write_file(path, out, len - fl + tl), 0);
	free(out);
	free(s);
}

/* The value of "key <value>\n" in the file, copied into out. */
static void file_value(const char *path, const char *key, char *out, size_t cap)
{
	char *s = th_read_file(path, NULL), pat[32], *p, *e;

	assert_non_null(s);
	snprintf(pat, sizeof(pat), "\n%s ", key);
	p = strstr(s, pat);
	assert_non_null(p);
	p += strlen(pat);
	e = strchr(p, '\n');
	assert_non_null(e);
	assert_true((size_t)(e - p) < cap);
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	free(s);
}

/* ---------------------------------------------------------------- tests */

static void sha256_known_answer(void **state)
{
	uint8_t h[TL_HASH_LEN], want[TL_HASH_LEN];

	(void)state;
	tl_sha256(h, "abc", 3);
	th_unhex(want, sizeof(want),
	         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_memory_equal(h, want, TL_HASH_LEN);
}

static void seed_gives_known_public_key(void **state)
{
	uint8_t seed[TL_SEED_LEN], pub[TL_PUB_LEN];
	struct tl_keypair kp, kp2;

	(void)state;
	/* golang.org/x/mod sumdb/note test key (tests/vectors/notes). */
	th_unhex(seed, sizeof(seed),
	         "810a1402d5146c8d84f2443330f54080ebf98ee17d9c74f6252fc5d5c7283173");
	th_unhex(pub, sizeof(pub),
	         "1a5cd907143c384c41e830c5bce12aa8817ec5649aaabf2c31388b35b2d744d6");
	assert_int_equal(tl_key_from_seed(&kp, seed), 0);
	assert_memory_equal(kp.pk, pub, TL_PUB_LEN);
	assert_memory_equal(kp.sk, seed, TL_SEED_LEN);
	assert_memory_equal(kp.sk + TL_SEED_LEN, pub, TL_PUB_LEN);
	assert_int_equal(tl_key_generate(&kp2), 0);
	assert_memory_not_equal(kp2.pk, kp.pk, TL_PUB_LEN);
	tl_key_wipe(&kp);
	memset(seed, 0, sizeof(seed));
	assert_memory_equal(kp.sk, seed, TL_SEED_LEN);
	tl_key_wipe(&kp2);
}

static void sign_and_verify(void **state)
{
	struct fixture *f = *state;
	struct tl_keypair other;
	uint8_t sig[TL_SIG_LEN];
	uint8_t msg[] = "tally/entry/v1\nhello";

	tl_sign(sig, msg, sizeof(msg), f->kp.sk);
	assert_int_equal(tl_verify(sig, msg, sizeof(msg), f->kp.pk), 0);
	msg[3] ^= 1;
	assert_int_equal(tl_verify(sig, msg, sizeof(msg), f->kp.pk), TL_ESIG);
	msg[3] ^= 1;
	sig[10] ^= 0x40;
	assert_int_equal(tl_verify(sig, msg, sizeof(msg), f->kp.pk), TL_ESIG);
	sig[10] ^= 0x40;
	assert_int_equal(tl_key_generate(&other), 0);
	assert_int_equal(tl_verify(sig, msg, sizeof(msg), other.pk), TL_ESIG);
	/* Empty message. */
	tl_sign(sig, msg, 0, f->kp.sk);
	assert_int_equal(tl_verify(sig, msg, 0, f->kp.pk), 0);
	tl_key_wipe(&other);
}

static void keyfile_round_trip(void **state)
{
	struct fixture *f = *state;
	struct tl_keypair back;
	uint8_t pk[TL_PUB_LEN];
	char label[64];
	struct stat st;
	struct dirent *e;
	DIR *d;
	int entries = 0;

	write_key(f);
	assert_int_equal(stat(f->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* The temp file is gone. */
	d = opendir(f->dir);
	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			entries++;
	closedir(d);
	assert_int_equal(entries, 1);

	memset(&back, 0, sizeof(back));
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), 0);
	assert_memory_equal(back.pk, f->kp.pk, TL_PUB_LEN);
	assert_memory_equal(back.sk, f->kp.sk, TL_SEC_LEN);
	tl_key_wipe(&back);

	assert_int_equal(tl_keyfile_read_public(f->path, pk, label, sizeof(label)), 0);
	assert_memory_equal(pk, f->kp.pk, TL_PUB_LEN);
	assert_string_equal(label, "acme books");
	assert_int_equal(tl_keyfile_read_public(f->path, pk, NULL, 0), 0);
	assert_int_equal(tl_keyfile_read_public(f->path, pk, label, 10), TL_ETOOBIG);
}

static void keyfile_wrong_passphrase(void **state)
{
	struct fixture *f = *state;
	struct tl_keypair back;

	write_key(f);
	assert_int_equal(tl_keyfile_read(f->path, "wrong", 5, &back), TL_EPASS);
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS) - 1, &back), TL_EPASS);
	assert_int_equal(tl_keyfile_read(f->path, "", 0, &back), TL_EPASS);
}

static void keyfile_damaged_seal(void **state)
{
	struct fixture *f = *state;
	struct tl_keypair back;
	char val[128], enc[128];
	uint8_t raw[64];
	size_t n, i;

	write_key(f);
	file_value(f->path, "sealed", val, sizeof(val));
	assert_int_equal(tl_b64_decode(raw, sizeof(raw), &n, val, strlen(val)), 0);
	assert_int_equal(n, TL_SEED_LEN + crypto_secretbox_MACBYTES);
	/* Any flipped byte of the ciphertext or its tag. */
	for (i = 0; i < n; i += 7) {
		raw[i] ^= 0x01;
		tl_b64_encode(enc, raw, n);
		edit_file(f->path, val, enc);
		assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EPASS);
		edit_file(f->path, enc, val);
		raw[i] ^= 0x01;
	}
	/* The nonce and salt are bound to the seal too. */
	file_value(f->path, "nonce", val, sizeof(val));
	assert_int_equal(tl_b64_decode(raw, sizeof(raw), &n, val, strlen(val)), 0);
	raw[0] ^= 0x80;
	tl_b64_encode(enc, raw, n);
	edit_file(f->path, val, enc);
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EPASS);
	/* The intact original still reads after putting it back. */
	edit_file(f->path, enc, val);
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), 0);
	tl_key_wipe(&back);
}

static void keyfile_damaged_header(void **state)
{
	struct fixture *f = *state;
	struct tl_keypair back;
	uint8_t pk[TL_PUB_LEN];
	char hex[2 * TL_PUB_LEN + 1], bad[2 * TL_PUB_LEN + 1], salt[64];
	struct stat st;

	write_key(f);
	/* A public key that disagrees with the sealed seed. */
	file_value(f->path, "public", hex, sizeof(hex));
	memcpy(bad, hex, sizeof(bad));
	bad[5] = bad[5] == '0' ? '1' : '0';
	edit_file(f->path, hex, bad);
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EFORMAT);
	edit_file(f->path, bad, hex);

	edit_file(f->path, "tally-key/v1", "tally-key/v2");
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EFORMAT);
	assert_int_equal(tl_keyfile_read_public(f->path, pk, NULL, 0), TL_EFORMAT);
	edit_file(f->path, "tally-key/v2", "tally-key/v1");

	/* Hostile Argon2 limits are refused before any work is done. */
	edit_file(f->path, "kdf argon2id13 1 8192", "kdf argon2id13 1 99999999999999");
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EFORMAT);
	edit_file(f->path, "kdf argon2id13 1 99999999999999", "kdf argon2id13 1000 8192");
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EFORMAT);
	edit_file(f->path, "kdf argon2id13 1000 8192", "kdf argon2id13 01 8192");
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EFORMAT);
	edit_file(f->path, "kdf argon2id13 01 8192", "kdf argon2i13 1 8192");
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EFORMAT);
	edit_file(f->path, "kdf argon2i13 1 8192", "kdf argon2id13 1 8192");

	file_value(f->path, "salt", salt, sizeof(salt));
	edit_file(f->path, salt, "AAAA");
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EFORMAT);
	edit_file(f->path, "AAAA", salt);

	edit_file(f->path, "label ", "label\t");
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EFORMAT);
	edit_file(f->path, "label\t", "label ");

	/* Trailing garbage and truncation. */
	assert_int_equal(stat(f->path, &st), 0);
	edit_file(f->path, "\nsealed ", "\nextra 1\nsealed ");
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EFORMAT);
	edit_file(f->path, "\nextra 1\nsealed ", "\nsealed ");
	assert_int_equal(truncate(f->path, st.st_size - 1), 0);
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EFORMAT);

	assert_int_equal(th_write_file(f->path, "", 0), 0);
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EFORMAT);
	assert_int_equal(tl_keyfile_read(f->dir, PASS, strlen(PASS), &back), TL_EFORMAT);
	unlink(f->path);
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), TL_EIO);
}

static void keyfile_never_overwrites(void **state)
{
	struct fixture *f = *state;
	struct tl_keypair other, back;
	char *before, *after;
	size_t bl, al;

	write_key(f);
	before = th_read_file(f->path, &bl);
	assert_int_equal(tl_key_generate(&other), 0);
	assert_int_equal(tl_keyfile_write(f->path, &other, "other", "x", 1, OPS, MEM), TL_EEXIST);
	after = th_read_file(f->path, &al);
	assert_int_equal(bl, al);
	assert_memory_equal(before, after, bl);
	assert_int_equal(tl_keyfile_read(f->path, PASS, strlen(PASS), &back), 0);
	assert_memory_equal(back.pk, f->kp.pk, TL_PUB_LEN);
	free(before);
	free(after);
	tl_key_wipe(&other);
	tl_key_wipe(&back);
}

static void keyfile_bad_arguments(void **state)
{
	struct fixture *f = *state;
	struct tl_keypair bad = f->kp;
	char path[600];

	assert_int_equal(tl_keyfile_write(f->path, &f->kp, "two\nlines", "x", 1, OPS, MEM),
	                 TL_EINVAL);
	assert_int_equal(tl_keyfile_write(f->path, &f->kp, "l", "x", 1, OPS, 1024), TL_EINVAL);
	bad.pk[0] ^= 1;
	assert_int_equal(tl_keyfile_write(f->path, &bad, "l", "x", 1, OPS, MEM), TL_EINVAL);
	tl_key_wipe(&bad);
	snprintf(path, sizeof(path), "%s/no/such/dir/k", f->dir);
	assert_int_equal(tl_keyfile_write(path, &f->kp, "l", "x", 1, OPS, MEM), TL_EIO);
	/* An empty label and an empty passphrase are allowed. */
	assert_int_equal(tl_keyfile_write(f->path, &f->kp, "", "", 0, OPS, MEM), 0);
	assert_int_equal(tl_keyfile_read(f->path, "", 0, &bad), 0);
	assert_memory_equal(bad.sk, f->kp.sk, TL_SEC_LEN);
	tl_key_wipe(&bad);
}

static void passphrase_from_environment(void **state)
{
	char buf[16];
	size_t len = 99;
	pid_t pid;
	int status;

	(void)state;
	assert_int_equal(setenv("TALLY_PASSPHRASE", "s3cret", 1), 0);
	assert_int_equal(tl_passphrase_get(buf, sizeof(buf), &len, "Passphrase: ", 1), 0);
	assert_int_equal(len, 6);
	assert_string_equal(buf, "s3cret");
	assert_int_equal(setenv("TALLY_PASSPHRASE", "0123456789abcdef", 1), 0);
	assert_int_equal(tl_passphrase_get(buf, sizeof(buf), &len, "Passphrase: ", 0), TL_ETOOBIG);
	assert_int_equal(unsetenv("TALLY_PASSPHRASE"), 0);

	/* No variable and no controlling terminal: refused, not blocked. */
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int rc;

		setsid();
		rc = tl_passphrase_get(buf, sizeof(buf), &len, "Passphrase: ", 0);
		_exit(rc == TL_EINVAL ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(sha256_known_answer),
	        cmocka_unit_test(seed_gives_known_public_key),
	        cmocka_unit_test_setup_teardown(sign_and_verify, setup, teardown),
	        cmocka_unit_test_setup_teardown(keyfile_round_trip, setup, teardown),
	        cmocka_unit_test_setup_teardown(keyfile_wrong_passphrase, setup, teardown),
	        cmocka_unit_test_setup_teardown(keyfile_damaged_seal, setup, teardown),
	        cmocka_unit_test_setup_teardown(keyfile_damaged_header, setup, teardown),
	        cmocka_unit_test_setup_teardown(keyfile_never_overwrites, setup, teardown),
	        cmocka_unit_test_setup_teardown(keyfile_bad_arguments, setup, teardown),
	        cmocka_unit_test(passphrase_from_environment),
	};

	if (tl_init() != 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
