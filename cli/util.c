/* util.c — shared plumbing of the tally commands; see cli.h. */
#include "cli.h"

#include <inttypes.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int in_list(const char *const *list, const char *name)
{
	for (; list && *list; list++)
		if (strcmp(*list, name) == 0)
			return 1;
	return 0;
}

int cli_parse(struct cli *c, int argc, char **argv, const char *const *allowed,
              const char *const *flags)
{
	static const char *const global_flags[] = {"--json", NULL};
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			for (i++; i < argc; i++) {
				if (c->npos == CLI_MAX_ARGS)
					return cli_usage(c, "too many arguments");
				c->pos[c->npos++] = argv[i];
			}
			break;
		}
		/* "--name", "--name=value" and single-letter "-o"; "-" alone is stdin. */
		if (a[0] != '-' || a[1] == 0 || (a[1] != '-' && a[2] != 0)) {
			if (c->npos == CLI_MAX_ARGS)
				return cli_usage(c, "too many arguments");
			c->pos[c->npos++] = a;
			continue;
		}
		char name[64];
		const char *eq = strchr(a, '=');
		size_t nl = eq ? (size_t)(eq - a) : strlen(a);
		if (nl >= sizeof name)
			return cli_usage(c, "unknown option '%s'", a);
		memcpy(name, a, nl);
		name[nl] = 0;
		const char *val = NULL;
		if (in_list(global_flags, name) || in_list(flags, name)) {
			if (eq)
				return cli_usage(c, "option %s takes no value", name);
			if (strcmp(name, "--json") == 0)
				c->json = 1;
		} else if (strcmp(name, "--home") == 0 || in_list(allowed, name)) {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return cli_usage(c, "option %s needs a value", name);
			if (strcmp(name, "--home") == 0) {
				c->home = val;
				continue;
			}
		} else {
			return cli_usage(c, "unknown option '%s'", name);
		}
		if (c->nopts == CLI_MAX_ARGS)
			return cli_usage(c, "too many options");
		/* Option names live in argv (or the flags table) for the whole run. */
		const char *const *hit = in_list(flags, name) ? flags : allowed;
		for (; hit && *hit; hit++)
			if (strcmp(*hit, name) == 0)
				break;
		c->opts[c->nopts++] = (struct cli_opt){hit && *hit ? *hit : "--json", val};
	}
	if (!c->home) {
		const char *h = getenv("TALLY_HOME");
		if (h && *h) {
			c->home = h;
		} else {
			const char *u = getenv("HOME");
			snprintf(c->home_buf, sizeof c->home_buf, "%s/.tally", u && *u ? u : ".");
			c->home = c->home_buf;
		}
	}
	return 0;
}

const char *cli_opt(const struct cli *c, const char *name)
{
	const char *v = NULL;
	for (int i = 0; i < c->nopts; i++)
		if (strcmp(c->opts[i].name, name) == 0)
			v = c->opts[i].val;
	return v;
}

int cli_has(const struct cli *c, const char *name)
{
	for (int i = 0; i < c->nopts; i++)
		if (strcmp(c->opts[i].name, name) == 0)
			return 1;
	return 0;
}

int cli_u64(const struct cli *c, const char *what, const char *s, uint64_t *out)
{
	if (!s || tl_parse_u64(s, strlen(s), out) != 0)
		return cli_usage(c, "%s must be a non-negative integer, not '%s'", what,
		                 s ? s : "");
	return 0;
}

int cli_fail(const struct cli *c, int code, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tally %s: ", c->cmd ? c->cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

int cli_usage(const struct cli *c, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "tally %s: ", c->cmd ? c->cmd : "");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see 'tally help')\n");
	return EXIT_USAGE;
}

/* mkdir -p: parents as needed, each with mode. */
static int mkdir_p(const char *path, mode_t mode)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, mode) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, mode) == 0 || errno == EEXIST)
		return 0;
	return -1;
}

int cli_open_store(struct cli *c, int create)
{
	char path[4200], err[512];
	struct stat sb;
	if (c->store)
		return 0; /* already open for this command */
	if (create) {
		snprintf(path, sizeof path, "%s/keys", c->home);
		if (mkdir_p(c->home, 0700) != 0 || mkdir_p(path, 0700) != 0)
			return cli_fail(c, EXIT_ENV, "cannot create home directory '%s': %s",
			                c->home, strerror(errno));
	}
	snprintf(path, sizeof path, "%s/store", c->home);
	if (!create && stat(path, &sb) != 0)
		return cli_fail(c, EXIT_ENV,
		                "no Tally home at '%s' (run 'tally init --book NAME' first, or "
		                "pass --home / set TALLY_HOME)",
		                c->home);
	int rc = tl_store_open(&c->store, path, 0, 0, err, sizeof err);
	if (rc)
		return cli_fail(c, EXIT_ENV, "cannot open the store: %s", err);
	return 0;
}

void cli_close(struct cli *c)
{
	tl_store_close(c->store);
	c->store = NULL;
}

void cli_key_path(const struct cli *c, const char *book, char *out, size_t cap)
{
	snprintf(out, cap, "%s/keys/%s.key", c->home, book);
}

int cli_load_key(struct cli *c, const char *book, struct tl_keypair *kp)
{
	char path[4200], prompt[128];
	char *pass = sodium_malloc(1024);
	size_t plen = 0;
	int rc;

	if (!pass)
		return cli_fail(c, EXIT_ENV, "out of memory");
	cli_key_path(c, book, path, sizeof path);
	snprintf(prompt, sizeof prompt, "Passphrase for book %s: ", book);
	rc = tl_passphrase_get(pass, 1024, &plen, prompt, 0);
	if (rc) {
		sodium_free(pass);
		return cli_fail(c, EXIT_ENV,
		                "no passphrase for book %s: set TALLY_PASSPHRASE or run on a "
		                "terminal",
		                book);
	}
	rc = tl_keyfile_read(path, pass, plen, kp);
	sodium_free(pass);
	if (rc == TL_EPASS)
		return cli_fail(c, EXIT_ENV,
		                "key file %s: wrong passphrase, or the sealed key is damaged",
		                path);
	if (rc == TL_EIO)
		return cli_fail(c, EXIT_ENV, "key file %s: %s", path, strerror(errno));
	if (rc)
		return cli_fail(c, EXIT_ENV, "key file %s: %s", path, tl_strerror(rc));
	return 0;
}

int cli_lock(struct cli *c, int *fd)
{
	char path[4200];
	snprintf(path, sizeof path, "%s/append.lock", c->home);
	*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (*fd < 0)
		return cli_fail(c, EXIT_ENV, "cannot open %s: %s", path, strerror(errno));
	if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK) {
			close(*fd);
			return cli_fail(c, EXIT_ENV, "cannot lock %s: %s", path, strerror(errno));
		}
		fprintf(stderr, "tally %s: waiting for another writer on %s\n", c->cmd, c->home);
		if (flock(*fd, LOCK_EX) != 0) {
			close(*fd);
			return cli_fail(c, EXIT_ENV, "cannot lock %s: %s", path, strerror(errno));
		}
	}
	return 0;
}

void cli_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

int cli_feed(struct cli *c, const char *origin, struct tl_feed *f)
{
	int rc = tl_store_feed_get(c->store, origin, f);
	if (rc == TL_ENOTFOUND)
		return cli_fail(c, EXIT_INVALID, "%s", tl_store_errmsg(c->store));
	if (rc)
		return cli_fail(c, EXIT_ENV, "%s", tl_store_errmsg(c->store));
	return 0;
}

int cli_checkpoint_current(struct cli *c, const struct tl_feed *f, struct tl_buf *note,
                           uint64_t *size, int may_sign)
{
	uint64_t have = 0;
	int rc = tl_store_checkpoint_get(c->store, f, UINT64_MAX, note, &have);
	if (rc && rc != TL_ENOTFOUND)
		return cli_fail(c, EXIT_ENV, "%s", tl_store_errmsg(c->store));
	if (rc == 0 && (have == f->head.size || !(f->flags & TL_FEED_OWN) || !may_sign)) {
		*size = have;
		return 0;
	}
	if (!(f->flags & TL_FEED_OWN) || !may_sign)
		return cli_fail(c, EXIT_INVALID, "feed %s: no signed checkpoint is stored",
		                f->origin);

	struct tl_keypair kp;
	struct tl_checkpoint cp;
	struct tl_buf text;
	if ((rc = cli_load_key(c, f->book, &kp)) != 0)
		return rc;
	memset(&cp, 0, sizeof cp);
	memcpy(cp.origin, f->origin, TL_ORIGIN_LEN + 1);
	cp.size = f->head.size;
	tl_buf_init(&text, TL_NOTE_MAX);
	if ((rc = tl_store_root(c->store, f, cp.size, cp.root)) != 0) {
		rc = cli_fail(c, EXIT_ENV, "%s", tl_store_errmsg(c->store));
		goto out;
	}
	tl_buf_reset(note);
	if ((rc = tl_checkpoint_format(&cp, &text)) != 0 ||
	    (rc = tl_note_sign(note, (const char *)text.data, text.len, f->origin, &kp)) != 0) {
		rc = cli_fail(c, EXIT_ENV, "signing checkpoint: %s", tl_strerror(rc));
		goto out;
	}
	if ((rc = tl_store_checkpoint_put(c->store, f, cp.size, (const char *)note->data,
	                                  note->len)) != 0) {
		rc = cli_fail(c, EXIT_ENV, "%s", tl_store_errmsg(c->store));
		goto out;
	}
	*size = cp.size;
out:
	tl_key_wipe(&kp);
	tl_buf_release(&text);
	return rc;
}

int cli_read_file(struct cli *c, const char *path, size_t max, struct tl_buf *out)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (!f)
		return cli_fail(c, EXIT_ENV, "cannot open '%s': %s", path, strerror(errno));
	tl_buf_init(out, max + 1); /* + 1: room for the terminating NUL */
	int rc = 0;
	for (;;) {
		size_t room = max - out->len;
		if (room == 0) {
			if (fgetc(f) != EOF)
				rc = cli_fail(c, EXIT_INVALID, "'%s' is larger than %zu bytes",
				              path, max);
			break;
		}
		if ((rc = tl_buf_reserve(out, room < 65536 ? room : 65536)) != 0) {
			rc = cli_fail(c, EXIT_ENV, "out of memory reading '%s'", path);
			break;
		}
		size_t want = out->cap - out->len;
		if (want > room)
			want = room;
		size_t r = fread(out->data + out->len, 1, want, f);
		out->len += r;
		if (r == 0) {
			if (ferror(f))
				rc = cli_fail(c, EXIT_ENV, "reading '%s': %s", path,
				              strerror(errno));
			break;
		}
	}
	if (f != stdin)
		fclose(f);
	if (rc)
		tl_buf_release(out);
	else
		tl_buf_cstr(out);
	return rc;
}

void cli_duration(char out[32], uint64_t ms)
{
	uint64_t s = ms / 1000, d = s / 86400, h = s % 86400 / 3600, m = s % 3600 / 60;

	if (d)
		snprintf(out, 32, "%" PRIu64 " d %" PRIu64 " h", d, h);
	else if (h)
		snprintf(out, 32, "%" PRIu64 " h %" PRIu64 " min", h, m);
	else if (m)
		snprintf(out, 32, "%" PRIu64 " min", m);
	else
		snprintf(out, 32, "%" PRIu64 " s", s);
}

void cli_late_words(char out[64], uint64_t deadline_ms, uint64_t evidence_ms)
{
	char d[32];

	if (evidence_ms <= deadline_ms) {
		snprintf(out, 64, "LATE");
		return;
	}
	cli_duration(d, evidence_ms - deadline_ms);
	snprintf(out, 64, "LATE by more than %s", d);
}

void cli_time_iso(char out[32], uint64_t ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + n, 32 - n, ".%03uZ", (unsigned)(ms % 1000));
}

uint64_t cli_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int cli_store_fail(struct cli *c, int rc)
{
	int code = (rc == TL_ECORRUPT || rc == TL_ECHAIN || rc == TL_ERANGE || rc == TL_ENOTFOUND ||
	            rc == TL_EEXIST || rc == TL_EINVAL || rc == TL_EFORK)
	                   ? EXIT_INVALID
	                   : EXIT_ENV;
	return cli_fail(c, code, "%s", c->store ? tl_store_errmsg(c->store) : tl_strerror(rc));
}

int cli_fsync_dir(const char *path)
{
	char dir[4200];
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = 0;
	else if (slash)
		*slash = 0;
	else
		strcpy(dir, ".");
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int cli_write_atomic(struct cli *c, const char *path, const void *data, size_t len)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return cli_fail(c, EXIT_ENV, "cannot write '%s': %s", tmp, strerror(errno));
	const uint8_t *p = data;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, p + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			goto fail;
		off += (size_t)w;
	}
	if (fsync(fd) != 0)
		goto fail;
	close(fd);
	fd = -1;
	if (rename(tmp, path) != 0)
		goto fail;
	cli_fsync_dir(path);
	return 0;
fail:;
	int e = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return cli_fail(c, EXIT_ENV, "cannot write '%s': %s", path, strerror(e));
}

int cli_own_feed(struct cli *c, const char *which, const char *book, const char *skip,
                 struct tl_feed *out)
{
	struct tl_feed *feeds;
	size_t n, hits = 0;
	char ch[TL_CHANNEL_LEN * 2 + 1];
	if (tl_store_feed_list(c->store, &feeds, &n) != 0)
		return cli_store_fail(c, TL_ESTORE);
	for (size_t i = 0; i < n; i++) {
		if (!(feeds[i].flags & TL_FEED_OWN))
			continue;
		if (book && strcmp(book, feeds[i].book) != 0)
			continue;
		if (skip && strcmp(skip, feeds[i].origin) == 0)
			continue;
		tl_hex_encode(ch, feeds[i].o.channel, TL_CHANNEL_LEN);
		if (strcmp(which, feeds[i].origin) == 0 || strcmp(which, ch) == 0) {
			*out = feeds[i];
			hits++;
		}
	}
	free(feeds);
	if (hits == 1)
		return 0;
	if (hits)
		return cli_fail(c, EXIT_INVALID,
		                "channel %s has feeds of several books here: give the feed origin",
		                which);
	return cli_fail(c, EXIT_INVALID,
	                "no feed of %s%s here in channel %s (see tally channel list)",
	                book ? "book " : "a book", book ? book : "", which);
}

int cli_read_line(int fd, struct tl_buf *out, struct tl_buf *pending, int timeout_ms)
{
	tl_buf_reset(out);
	for (;;) {
		uint8_t *nl = pending->len ? memchr(pending->data, '\n', pending->len) : NULL;
		if (nl) {
			size_t l = (size_t)(nl - pending->data);
			if (tl_buf_add(out, pending->data, l) != 0)
				return -1;
			memmove(pending->data, nl + 1, pending->len - l - 1);
			pending->len -= l + 1;
			tl_buf_cstr(out);
			return 0;
		}
		if (timeout_ms >= 0) {
			struct pollfd pfd = {fd, POLLIN, 0};
			int pr = poll(&pfd, 1, timeout_ms);
			if (pr < 0 && errno == EINTR)
				continue;
			if (pr <= 0)
				return -1;
		}
		if (tl_buf_reserve(pending, 65536) != 0)
			return -1;
		ssize_t r = read(fd, pending->data + pending->len, 65536);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		pending->len += (size_t)r;
	}
}
