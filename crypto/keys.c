/*
 * keys.c — SHA-256, Ed25519 book keys, passphrase-sealed key files and the
 * passphrase prompt.
 *
 * Key file (text, mode 0600):
 *
 *   tally-key/v1
 *   label <label>
 *   public <hex public key>
 *   kdf argon2id13 <opslimit> <memlimit>
 *   salt <base64 16 bytes>
 *   nonce <base64 24 bytes>
 *   sealed <base64 secretbox(seed) 48 bytes>
 *
 * Every line is required, in this order, and ends in a newline.
 */
#include "crypto/tl_crypto.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#define KF_MAGIC      "tally-key/v1"
#define KF_MAX        1024 /* a valid file is < 600 bytes */
#define KF_SALT_LEN   crypto_pwhash_SALTBYTES
#define KF_NONCE_LEN  crypto_secretbox_NONCEBYTES
#define KF_SEALED_LEN (TL_SEED_LEN + crypto_secretbox_MACBYTES)
/* Upper Argon2id limits accepted from a file: a hostile file must not be
 * able to ask for unbounded memory or time before the MAC says no. */
#define KF_OPS_MAX 32ULL
#define KF_MEM_MAX ((size_t)crypto_pwhash_MEMLIMIT_SENSITIVE)

/* ------------------------------------------------------------- hashing */

void tl_sha256(uint8_t out[TL_HASH_LEN], const void *data, size_t len)
{
	crypto_hash_sha256(out, data, len);
}

/* ------------------------------------------------------------- Ed25519 */

int tl_key_generate(struct tl_keypair *kp)
{
	if (crypto_sign_keypair(kp->pk, kp->sk) != 0)
		return TL_ECRYPTO;
	return 0;
}

int tl_key_from_seed(struct tl_keypair *kp, const uint8_t seed[TL_SEED_LEN])
{
	if (crypto_sign_seed_keypair(kp->pk, kp->sk, seed) != 0)
		return TL_ECRYPTO;
	return 0;
}

void tl_key_wipe(struct tl_keypair *kp)
{
	sodium_memzero(kp, sizeof(*kp));
}

void tl_sign(uint8_t sig[TL_SIG_LEN], const uint8_t *msg, size_t len, const uint8_t sk[TL_SEC_LEN])
{
	crypto_sign_detached(sig, NULL, msg, len, sk);
}

int tl_verify(const uint8_t sig[TL_SIG_LEN], const uint8_t *msg, size_t len,
              const uint8_t pk[TL_PUB_LEN])
{
	return crypto_sign_verify_detached(sig, msg, len, pk) == 0 ? 0 : TL_ESIG;
}

/* ----------------------------------------------------------- key files */

struct kf_header {
	char label[TL_NAME_MAX + 1];
	uint8_t pk[TL_PUB_LEN];
	unsigned long long ops;
	size_t mem;
	uint8_t salt[KF_SALT_LEN];
	uint8_t nonce[KF_NONCE_LEN];
	uint8_t sealed[KF_SEALED_LEN];
};

static int label_valid(const char *s, size_t len)
{
	size_t i;

	if (len > TL_NAME_MAX || !tl_utf8_valid((const uint8_t *)s, len))
		return 0;
	for (i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return 0;
	return 1;
}

static int limits_valid(unsigned long long ops, size_t mem)
{
	return ops >= crypto_pwhash_OPSLIMIT_MIN && ops <= KF_OPS_MAX &&
	       mem >= crypto_pwhash_MEMLIMIT_MIN && mem <= KF_MEM_MAX;
}

/* Takes the next line (without its newline) off [*p, *p + *left). */
static int next_line(const char **p, size_t *left, const char **line, size_t *len)
{
	const char *nl = memchr(*p, '\n', *left);

	if (!nl)
		return TL_EFORMAT;
	*line = *p;
	*len = (size_t)(nl - *p);
	*left -= *len + 1;
	*p = nl + 1;
	return 0;
}

/* Strips "key " off a line; the rest is the value. */
static int line_value(const char *line, size_t len, const char *key, const char **val, size_t *vlen)
{
	size_t klen = strlen(key);

	if (len < klen + 1 || memcmp(line, key, klen) != 0 || line[klen] != ' ')
		return TL_EFORMAT;
	*val = line + klen + 1;
	*vlen = len - klen - 1;
	return 0;
}

static int b64_exact(uint8_t *out, size_t n, const char *s, size_t len)
{
	size_t got;

	if (tl_b64_decode(out, n, &got, s, len) != 0 || got != n)
		return TL_EFORMAT;
	return 0;
}

static int kf_parse(struct kf_header *h, const char *buf, size_t len)
{
	const char *p = buf, *line, *v, *sp;
	size_t left = len, ll, vl;
	uint64_t ops, mem;

	memset(h, 0, sizeof(*h));
	if (next_line(&p, &left, &line, &ll) || ll != strlen(KF_MAGIC) ||
	    memcmp(line, KF_MAGIC, ll) != 0)
		return TL_EFORMAT;

	if (next_line(&p, &left, &line, &ll) || line_value(line, ll, "label", &v, &vl) ||
	    !label_valid(v, vl))
		return TL_EFORMAT;
	memcpy(h->label, v, vl);
	h->label[vl] = '\0';

	if (next_line(&p, &left, &line, &ll) || line_value(line, ll, "public", &v, &vl) ||
	    tl_hex_decode(h->pk, TL_PUB_LEN, v, vl))
		return TL_EFORMAT;

	if (next_line(&p, &left, &line, &ll) || line_value(line, ll, "kdf", &v, &vl) ||
	    line_value(v, vl, "argon2id13", &v, &vl))
		return TL_EFORMAT;
	sp = memchr(v, ' ', vl);
	if (!sp || tl_parse_u64(v, (size_t)(sp - v), &ops) ||
	    tl_parse_u64(sp + 1, vl - (size_t)(sp - v) - 1, &mem))
		return TL_EFORMAT;
	if (ops > KF_OPS_MAX || mem > KF_MEM_MAX || !limits_valid(ops, (size_t)mem))
		return TL_EFORMAT;
	h->ops = ops;
	h->mem = (size_t)mem;

	if (next_line(&p, &left, &line, &ll) || line_value(line, ll, "salt", &v, &vl) ||
	    b64_exact(h->salt, sizeof(h->salt), v, vl))
		return TL_EFORMAT;
	if (next_line(&p, &left, &line, &ll) || line_value(line, ll, "nonce", &v, &vl) ||
	    b64_exact(h->nonce, sizeof(h->nonce), v, vl))
		return TL_EFORMAT;
	if (next_line(&p, &left, &line, &ll) || line_value(line, ll, "sealed", &v, &vl) ||
	    b64_exact(h->sealed, sizeof(h->sealed), v, vl))
		return TL_EFORMAT;
	if (left != 0)
		return TL_EFORMAT;
	return 0;
}

/* Reads a whole regular file of at most cap bytes; TL_EFORMAT when larger. */
static int read_small_file(const char *path, char *buf, size_t cap, size_t *len)
{
	struct stat st;
	size_t got = 0;
	ssize_t r;
	int fd, err = 0, saved;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return TL_EIO;
	if (fstat(fd, &st) != 0) {
		err = TL_EIO;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < 0 || (uint64_t)st.st_size > cap) {
		err = TL_EFORMAT;
		goto out;
	}
	/* Read to EOF rather than trusting st_size: the file may change. */
	for (;;) {
		if (got == cap) {
			char c;

			r = read(fd, &c, 1);
			if (r > 0)
				err = TL_EFORMAT;
			else if (r < 0 && errno == EINTR)
				continue;
			else if (r < 0)
				err = TL_EIO;
			break;
		}
		r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = TL_EIO;
			break;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
out:
	saved = errno;
	close(fd);
	errno = saved;
	*len = got;
	return err;
}

static int derive_key(uint8_t key[crypto_secretbox_KEYBYTES], const char *pass, size_t passlen,
                      const uint8_t salt[KF_SALT_LEN], unsigned long long ops, size_t mem)
{
	if (passlen > crypto_pwhash_PASSWD_MAX)
		return TL_EINVAL;
	if (crypto_pwhash(key, crypto_secretbox_KEYBYTES, pass, passlen, salt, ops, mem,
	                  crypto_pwhash_ALG_ARGON2ID13) != 0)
		return TL_ENOMEM; /* libsodium fails here only when it cannot allocate */
	return 0;
}

static int add_b64_line(struct tl_buf *b, const char *key, const uint8_t *data, size_t n)
{
	char enc[128];
	int err;

	if (tl_b64_encoded_len(n) >= sizeof(enc))
		return TL_EINVAL;
	tl_b64_encode(enc, data, n);
	err = tl_buf_printf(b, "%s %s\n", key, enc);
	return err;
}

static int fsync_dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, err = 0;

	if (!slash) {
		dir = strdup(".");
	} else if (slash == path) {
		dir = strdup("/");
	} else {
		dir = malloc((size_t)(slash - path) + 1);
		if (dir) {
			memcpy(dir, path, (size_t)(slash - path));
			dir[slash - path] = '\0';
		}
	}
	if (!dir)
		return TL_ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		err = TL_EIO;
	if (fd >= 0)
		close(fd);
	free(dir);
	return err;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	ssize_t r;

	while (n) {
		r = write(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return TL_EIO;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/*
 * Publishes data at path without ever replacing an existing file: the data
 * is made durable in a temp file of the same directory, then hard-linked to
 * path (link fails with EEXIST where rename would silently overwrite).
 * Filesystems without hard links fall back to a checked rename.
 */
static int publish_file(const char *path, const uint8_t *data, size_t len)
{
	size_t plen = strlen(path);
	char *tmp = NULL;
	int fd = -1, err = 0, linked = 0;
	struct stat st;

	if (lstat(path, &st) == 0)
		return TL_EEXIST;
	tmp = malloc(plen + 8);
	if (!tmp)
		return TL_ENOMEM;
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".XXXXXX", 8);
	fd = mkstemp(tmp);
	if (fd < 0) {
		err = TL_EIO;
		goto fail;
	}
	if (fchmod(fd, 0600) != 0 || write_all(fd, data, len) != 0 || fsync(fd) != 0) {
		err = TL_EIO;
		goto fail;
	}
	if (close(fd) != 0) {
		fd = -1;
		err = TL_EIO;
		goto fail;
	}
	fd = -1;
	if (link(tmp, path) == 0) {
		linked = 1;
	} else if (errno == EEXIST) {
		err = TL_EEXIST;
		goto fail;
	} else if (errno == EPERM || errno == ENOTSUP || errno == EOPNOTSUPP || errno == ENOSYS) {
		if (lstat(path, &st) == 0) {
			err = TL_EEXIST;
			goto fail;
		}
		if (rename(tmp, path) != 0) {
			err = TL_EIO;
			goto fail;
		}
	} else {
		err = TL_EIO;
		goto fail;
	}
	if (linked)
		unlink(tmp);
	free(tmp);
	return fsync_dir_of(path);
fail:
	if (fd >= 0)
		close(fd);
	if (tmp) {
		int saved = errno;

		unlink(tmp);
		errno = saved;
		free(tmp);
	}
	return err;
}

int tl_keyfile_write(const char *path, const struct tl_keypair *kp, const char *label,
                     const char *pass, size_t passlen, unsigned long long ops, size_t mem)
{
	uint8_t salt[KF_SALT_LEN], nonce[KF_NONCE_LEN], sealed[KF_SEALED_LEN];
	char pkhex[2 * TL_PUB_LEN + 1];
	struct tl_keypair *check = NULL;
	uint8_t *key = NULL;
	struct tl_buf b;
	int err;

	tl_buf_init(&b, KF_MAX);
	if (!path || !kp || !label || (!pass && passlen))
		return TL_EINVAL;
	if (ops == 0)
		ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
	if (mem == 0)
		mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	if (!limits_valid(ops, mem) || !label_valid(label, strlen(label)))
		return TL_EINVAL;

	key = sodium_malloc(crypto_secretbox_KEYBYTES);
	check = sodium_malloc(sizeof(*check));
	if (!key || !check) {
		err = TL_ENOMEM;
		goto fail;
	}
	/* Refuse a keypair whose halves disagree: its file could never be read. */
	err = tl_key_from_seed(check, kp->sk);
	if (err)
		goto fail;
	if (sodium_memcmp(check->pk, kp->pk, TL_PUB_LEN) != 0) {
		err = TL_EINVAL;
		goto fail;
	}

	randombytes_buf(salt, sizeof(salt));
	randombytes_buf(nonce, sizeof(nonce));
	err = derive_key(key, pass ? pass : "", passlen, salt, ops, mem);
	if (err)
		goto fail;
	if (crypto_secretbox_easy(sealed, kp->sk, TL_SEED_LEN, nonce, key) != 0) {
		err = TL_ECRYPTO;
		goto fail;
	}

	tl_hex_encode(pkhex, kp->pk, TL_PUB_LEN);
	err = tl_buf_printf(&b, KF_MAGIC "\nlabel %s\npublic %s\nkdf argon2id13 %llu %zu\n", label,
	                    pkhex, ops, mem);
	if (!err)
		err = add_b64_line(&b, "salt", salt, sizeof(salt));
	if (!err)
		err = add_b64_line(&b, "nonce", nonce, sizeof(nonce));
	if (!err)
		err = add_b64_line(&b, "sealed", sealed, sizeof(sealed));
	if (err)
		goto fail;
	err = publish_file(path, b.data, b.len);
fail:
	if (key)
		sodium_free(key);
	if (check)
		sodium_free(check);
	tl_buf_release(&b);
	return err;
}

int tl_keyfile_read(const char *path, const char *pass, size_t passlen, struct tl_keypair *kp)
{
	char buf[KF_MAX];
	struct kf_header h;
	struct tl_keypair *tmp = NULL;
	uint8_t *key = NULL, *seed = NULL;
	size_t len;
	int err;

	if (!path || !kp || (!pass && passlen))
		return TL_EINVAL;
	err = read_small_file(path, buf, sizeof(buf), &len);
	if (err)
		return err;
	if (kf_parse(&h, buf, len) != 0)
		return TL_EFORMAT;

	key = sodium_malloc(crypto_secretbox_KEYBYTES);
	seed = sodium_malloc(TL_SEED_LEN);
	tmp = sodium_malloc(sizeof(*tmp));
	if (!key || !seed || !tmp) {
		err = TL_ENOMEM;
		goto fail;
	}
	err = derive_key(key, pass ? pass : "", passlen, h.salt, h.ops, h.mem);
	if (err)
		goto fail;
	if (crypto_secretbox_open_easy(seed, h.sealed, sizeof(h.sealed), h.nonce, key) != 0) {
		err = TL_EPASS;
		goto fail;
	}
	err = tl_key_from_seed(tmp, seed);
	if (err)
		goto fail;
	/* The seal authenticated the seed, so a disagreeing clear public key
	 * means the header was altered. */
	if (sodium_memcmp(tmp->pk, h.pk, TL_PUB_LEN) != 0) {
		err = TL_EFORMAT;
		goto fail;
	}
	memcpy(kp, tmp, sizeof(*kp));
fail:
	if (key)
		sodium_free(key);
	if (seed)
		sodium_free(seed);
	if (tmp)
		sodium_free(tmp);
	return err;
}

int tl_keyfile_read_public(const char *path, uint8_t pk[TL_PUB_LEN], char *label, size_t labelcap)
{
	char buf[KF_MAX];
	struct kf_header h;
	size_t len, llen;
	int err;

	if (!path || !pk || (label && labelcap == 0))
		return TL_EINVAL;
	err = read_small_file(path, buf, sizeof(buf), &len);
	if (err)
		return err;
	if (kf_parse(&h, buf, len) != 0)
		return TL_EFORMAT;
	if (label) {
		llen = strlen(h.label);
		if (llen >= labelcap)
			return TL_ETOOBIG;
		memcpy(label, h.label, llen + 1);
	}
	memcpy(pk, h.pk, TL_PUB_LEN);
	return 0;
}

/* ---------------------------------------------------------- passphrase */

/* Reads one line from the terminal with echo off. A line longer than cap - 1
 * is consumed to its end and refused, so nothing is left for the shell. */
static int tty_read_line(int fd, const char *prompt, char *buf, size_t cap, size_t *len)
{
	struct termios old, quiet;
	size_t n = 0;
	int err = 0, toolong = 0;
	ssize_t r;
	char c;

	if (tcgetattr(fd, &old) != 0)
		return TL_EINVAL;
	quiet = old;
	quiet.c_lflag &= (tcflag_t) ~(ECHO | ECHOE | ECHOK);
	quiet.c_lflag |= ECHONL;
	if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
		return TL_EIO;
	if (prompt && write_all(fd, (const uint8_t *)prompt, strlen(prompt)) != 0) {
		err = TL_EIO;
		goto out;
	}
	for (;;) {
		r = read(fd, &c, 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = TL_EIO;
			break;
		}
		if (r == 0 || c == '\n')
			break;
		if (n + 1 >= cap) {
			toolong = 1;
			continue;
		}
		buf[n++] = c;
	}
	c = 0;
	if (!err && toolong)
		err = TL_ETOOBIG;
out:
	tcsetattr(fd, TCSAFLUSH, &old);
	buf[err ? 0 : n] = '\0';
	if (err)
		sodium_memzero(buf, cap);
	*len = err ? 0 : n;
	return err;
}

int tl_passphrase_get(char *buf, size_t cap, size_t *len, const char *prompt, int confirm)
{
	const char *env;
	char *again = NULL;
	size_t n, n2;
	int fd, err;

	if (!buf || !len || cap == 0)
		return TL_EINVAL;
	*len = 0;
	env = getenv("TALLY_PASSPHRASE");
	if (env) {
		n = strlen(env);
		if (n >= cap)
			return TL_ETOOBIG;
		memcpy(buf, env, n + 1);
		*len = n;
		return 0;
	}
	/* A file (e.g. a systemd credential): its first line, without the
	 * newline. */
	env = getenv("TALLY_PASSPHRASE_FILE");
	if (env && *env) {
		fd = open(env, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return TL_EIO;
		ssize_t r;
		n = 0;
		while (n < cap && (r = read(fd, buf + n, cap - n)) > 0)
			n += (size_t)r;
		close(fd);
		char *nl = memchr(buf, '\n', n);
		if (nl)
			n = (size_t)(nl - buf);
		else if (n == cap)
			return TL_ETOOBIG;
		buf[n] = 0;
		*len = n;
		return 0;
	}
	fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return TL_EINVAL; /* no terminal and no $TALLY_PASSPHRASE */
	err = tty_read_line(fd, prompt, buf, cap, &n);
	if (err)
		goto out;
	if (confirm) {
		again = sodium_malloc(cap);
		if (!again) {
			err = TL_ENOMEM;
			goto out;
		}
		err = tty_read_line(fd, "Repeat passphrase: ", again, cap, &n2);
		if (err)
			goto out;
		if (n2 != n || sodium_memcmp(again, buf, n) != 0) {
			err = TL_EPASS;
			goto out;
		}
	}
	*len = n;
out:
	if (again)
		sodium_free(again);
	if (err)
		sodium_memzero(buf, cap);
	close(fd);
	return err;
}
