/* wigeon: `wigeon passwd --users FILE NAME [--role ROLE] [--delete]`: adds, changes or removes a
 * user of a users file (server/users.h). The password is read from the terminal without echo
 * (asked twice) or, when stdin is not a terminal, from its first line; never from argv. The other
 * lines (comments too) stay as they are; the file is replaced whole (a new file renamed over it,
 * mode 0600), so that a server reloading it never sees half of it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "server/users.h"

static void usage(FILE *f) {
  fprintf(f, "usage: wigeon passwd --users FILE NAME [--role read|write|admin] [--delete]\n\n"
             "Adds user NAME to the users file of `wigeon serve --users FILE` (creating the file),\n"
             "or changes its password; the password is asked twice on the terminal, or read from\n"
             "the first line of stdin when it is not a terminal. A new user gets role read unless\n"
             "--role says otherwise; an existing one keeps its role unless --role is given.\n\n"
             "options:\n"
             "  --users FILE   the users file (NAME:ROLE:HASH lines, argon2id hashes)\n"
             "  --role ROLE    read (queries), write (also puts and DML), admin (also DDL)\n"
             "  --delete       remove the user instead\n"
             "Send the server SIGHUP to make it re-read the file.\n");
}

/* Reads one line into buf without its newline: 0, or EIO/ENODATA. */
static int read_line(FILE *in, char *buf, size_t size) {
  if (fgets(buf, (int)size, in) == NULL) return ENODATA;
  size_t n = strlen(buf);
  if (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
  if (n > 0 && buf[n - 1] == '\r') buf[--n] = '\0';
  return 0;
}

int wg_cli_read_password(const char *prompt, char *buf, size_t size) {
  if (!isatty(STDIN_FILENO)) return read_line(stdin, buf, size);
  struct termios old, quiet;
  if (tcgetattr(STDIN_FILENO, &old) != 0) return errno;
  quiet = old;
  quiet.c_lflag &= ~(tcflag_t)ECHO;
  fprintf(stderr, "%s", prompt);
  fflush(stderr);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  int rc = read_line(stdin, buf, size);
  tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
  fprintf(stderr, "\n");
  return rc;
}

/* The password for the new hash: asked twice on a terminal. */
static int new_password(char *buf, size_t size) {
  int rc = wg_cli_read_password("New password: ", buf, size);
  if (rc != 0) {
    fprintf(stderr, "wigeon passwd: no password given\n");
    return rc;
  }
  if (buf[0] == '\0') {
    fprintf(stderr, "wigeon passwd: empty password refused\n");
    return EINVAL;
  }
  if (isatty(STDIN_FILENO)) {
    char again[512];
    rc = wg_cli_read_password("Again: ", again, sizeof(again));
    bool same = rc == 0 && strcmp(again, buf) == 0;
    sodium_memzero(again, sizeof(again));
    if (!same) {
      fprintf(stderr, "wigeon passwd: the passwords differ\n");
      return EINVAL;
    }
  }
  return 0;
}

/* Copies the file's lines into out, all but NAME's; *role gets NAME's role (0 if absent). */
static int copy_others(FILE *f, const char *path, const char *name, FILE *out, int *role) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int64_t lineno = 0;
  int rc = 0;
  while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
    lineno++;
    size_t len = (size_t)n;
    if (len > 0 && line[len - 1] == '\n') len--;
    struct wg_user u;
    struct wg_error err = {""};
    int prc = wg_users_parse_line(line, len, &u, &err);
    if (prc != 0 && prc != 1) {
      fprintf(stderr, "wigeon passwd: %s line %lld: %s\n", path, (long long)lineno, err.message);
      rc = prc;
    } else if (prc == 0 && strcmp(u.name, name) == 0) {
      *role = u.role;
    } else if (fwrite(line, 1, len, out) != len || fputc('\n', out) == EOF) {
      rc = EIO;
    }
  }
  free(line);
  return rc;
}

static int rewrite(const char *path, const char *name, int role, bool del, const char *password) {
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    fprintf(stderr, "wigeon passwd: cannot create %s: %s\n", tmp, strerror(errno));
    return errno;
  }
  FILE *out = fdopen(fd, "w");
  FILE *in = fopen(path, "re");
  int rc = 0, old_role = 0;
  if (in == NULL && errno != ENOENT) {
    rc = errno;
    fprintf(stderr, "wigeon passwd: cannot read %s: %s\n", path, strerror(errno));
  }
  if (rc == 0 && in != NULL) rc = copy_others(in, path, name, out, &old_role);
  if (in != NULL) fclose(in);
  if (rc == 0 && del && old_role == 0) {
    fprintf(stderr, "wigeon passwd: no user %s in %s\n", name, path);
    rc = ENOENT;
  }
  if (rc == 0 && !del) {
    char hash[WG_USER_HASH_MAX];
    struct wg_error err = {""};
    rc = wg_user_hash_password(password, strlen(password), hash, &err);
    int r = role != 0 ? role : old_role != 0 ? old_role : 1;
    static const char *names[] = {"", "read", "write", "admin"};
    if (rc == 0 && fprintf(out, "%s:%s:%s\n", name, names[r], hash) < 0) rc = EIO;
    if (rc == 0) fprintf(stderr, "wigeon passwd: %s user %s (role %s)\n",
                         old_role != 0 ? "changed" : "added", name, names[r]);
  }
  if (rc == 0 && del) fprintf(stderr, "wigeon passwd: removed user %s\n", name);
  if (fflush(out) != 0 || fsync(fd) != 0) rc = rc != 0 ? rc : EIO;
  fclose(out);
  if (rc == 0 && rename(tmp, path) != 0) {
    rc = errno;
    fprintf(stderr, "wigeon passwd: cannot replace %s: %s\n", path, strerror(errno));
  }
  if (rc != 0) unlink(tmp);
  return rc;
}

int wg_cli_passwd(int argc, char **argv) {
  const struct wg_cli_command cmd = {"passwd", usage};
  const char *users = NULL, *role_text = NULL, *name = NULL;
  bool del = false;
  const struct wg_cli_opt opts[] = {{"--users", NULL, &users, NULL},
                                    {"--role", NULL, &role_text, NULL},
                                    {"--delete", NULL, NULL, &del},
                                    {NULL, NULL, NULL, NULL}};
  int rc = wg_cli_parse_one(&cmd, argc, argv, opts, &name, "missing the user NAME");
  if (rc >= 0) return rc;
  if (users == NULL) return wg_cli_usage_error(&cmd, "--users FILE is needed");
  if (!wg_user_name_ok(name, strlen(name)))
    return wg_cli_usage_error(&cmd, "bad user name '%s': 1 to 64 of A-Z a-z 0-9 _ . @ -", name);
  int role = 0;
  if (role_text != NULL && (role = wg_user_role_parse(role_text, strlen(role_text))) == 0)
    return wg_cli_usage_error(&cmd, "--role is read, write or admin, not '%s'", role_text);
  if (del && role_text != NULL) return wg_cli_usage_error(&cmd, "--delete takes no --role");
  char password[512] = "";
  if (!del && new_password(password, sizeof(password)) != 0) return WG_EXIT_USAGE;
  rc = rewrite(users, name, role, del, password);
  sodium_memzero(password, sizeof(password));
  return rc == 0 ? 0 : WG_EXIT_SERVER;
}
