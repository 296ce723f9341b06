/* wigeon: the server's TLS certificate state and PEM files (see tls.h). gRPC asks the fetcher
 * (fetch_config) for a certificate config when the credentials are first used and again at every
 * new handshake; it answers NEW with the config a (re)load prepared, once, and UNCHANGED after,
 * so a reload takes effect at the next handshake and connections already open keep theirs. The
 * files are checked here, with libcrypto, before a config is prepared: gRPC itself would only
 * find a bad file at a handshake, long after the reload said it was fine. */
#include "rpc/tls.h"
#include "rpc/rpc.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

enum { WG_RPC_PEM_MAX = 1 << 20 };

struct wg__rpc_tls {
  char *cert_file, *key_file, *client_ca_file; /* client_ca_file NULL: no client certificates */
  pthread_mutex_t mu;
  grpc_ssl_server_certificate_config *pending; /* guarded by mu: for the next handshake */
};

int wg_rpc_read_pem(const char *path, const char *what, char **out, struct wg_error *err) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return wg_error_set(err, EINVAL, "cannot read the %s %.300s: %s", what, path, strerror(errno));
  char *buf = malloc(WG_RPC_PEM_MAX + 1);
  if (buf == NULL) {
    fclose(f);
    return wg_error_set(err, ENOMEM, "out of memory for the %s", what);
  }
  size_t n = fread(buf, 1, WG_RPC_PEM_MAX + 1, f);
  bool failed = ferror(f) != 0;
  fclose(f);
  if (failed || n > WG_RPC_PEM_MAX) {
    free(buf);
    return wg_error_set(err, EINVAL, "cannot read the %s %.300s: %s", what, path,
                        failed ? "read error" : "larger than 1 MiB");
  }
  buf[n] = '\0';
  if (strlen(buf) != n || strstr(buf, "-----BEGIN ") == NULL) {
    free(buf);
    return wg_error_set(err, EINVAL, "the %s %.300s is not a PEM file", what, path);
  }
  *out = buf;
  return 0;
}

/* A passphrase callback that gives none: an encrypted key fails instead of prompting. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
  (void)buf, (void)size, (void)rwflag, (void)u;
  return -1;
}

/* Whether pem holds at least one certificate that parses. */
static bool has_certificate(const char *pem) {
  BIO *b = BIO_new_mem_buf(pem, -1);
  X509 *x = b != NULL ? PEM_read_bio_X509(b, NULL, no_passphrase, NULL) : NULL;
  bool ok = x != NULL;
  X509_free(x);
  BIO_free(b);
  return ok;
}

/* The key must parse (unencrypted) and match the chain's first certificate. */
static int check_pair(const struct wg__rpc_tls *t, const char *cert, const char *key,
                      struct wg_error *err) {
  int rc = 0;
  BIO *cb = BIO_new_mem_buf(cert, -1), *kb = BIO_new_mem_buf(key, -1);
  X509 *x = cb != NULL ? PEM_read_bio_X509(cb, NULL, no_passphrase, NULL) : NULL;
  EVP_PKEY *k = kb != NULL ? PEM_read_bio_PrivateKey(kb, NULL, no_passphrase, NULL) : NULL;
  if (x == NULL)
    rc = wg_error_set(err, EINVAL, "the TLS certificate file %.300s holds no certificate",
                      t->cert_file);
  else if (k == NULL)
    rc = wg_error_set(err, EINVAL,
                      "the TLS key file %.300s holds no private key (an encrypted key is not "
                      "supported)",
                      t->key_file);
  else if (X509_check_private_key(x, k) != 1)
    rc = wg_error_set(err, EINVAL, "the TLS key file %.300s does not match the certificate %.300s",
                      t->key_file, t->cert_file);
  EVP_PKEY_free(k);
  X509_free(x);
  BIO_free(kb);
  BIO_free(cb);
  ERR_clear_error();
  return rc;
}

/* Reads and checks the files and makes the config the next handshake takes. */
static int load(struct wg__rpc_tls *t, struct wg_error *err) {
  char *cert = NULL, *key = NULL, *ca = NULL;
  int rc = wg_rpc_read_pem(t->cert_file, "TLS certificate file", &cert, err);
  if (rc == 0) rc = wg_rpc_read_pem(t->key_file, "TLS key file", &key, err);
  if (rc == 0 && t->client_ca_file != NULL)
    rc = wg_rpc_read_pem(t->client_ca_file, "TLS client CA file", &ca, err);
  if (rc == 0) rc = check_pair(t, cert, key, err);
  if (rc == 0 && ca != NULL && !has_certificate(ca))
    rc = wg_error_set(err, EINVAL, "the TLS client CA file %.300s holds no certificate",
                      t->client_ca_file);
  ERR_clear_error();
  grpc_ssl_server_certificate_config *config = NULL;
  if (rc == 0) {
    grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
    /* gRPC 1.51 asserts root certificates in a fetched config even when it asks for no client
     * certificate (ssl_security_connector.cc); then nothing is verified against them, so the
     * server's own chain stands in. */
    config = grpc_ssl_server_certificate_config_create(ca != NULL ? ca : cert, &pair, 1);
    /* (the config copies the strings) */
    if (config == NULL) rc = wg_error_set(err, ENOMEM, "out of memory for the TLS certificate");
  }
  if (key != NULL) OPENSSL_cleanse(key, strlen(key));
  free(key);
  free(cert);
  free(ca);
  if (rc != 0) return rc;
  pthread_mutex_lock(&t->mu);
  if (t->pending != NULL) grpc_ssl_server_certificate_config_destroy(t->pending);
  t->pending = config;
  pthread_mutex_unlock(&t->mu);
  return 0;
}

static grpc_ssl_certificate_config_reload_status fetch_config(
    void *user_data, grpc_ssl_server_certificate_config **config) {
  struct wg__rpc_tls *t = user_data;
  pthread_mutex_lock(&t->mu);
  grpc_ssl_server_certificate_config *c = t->pending;
  t->pending = NULL;
  pthread_mutex_unlock(&t->mu);
  if (c == NULL) return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
  *config = c; /* gRPC owns it now */
  return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

static char *dup_or_null(const char *s, bool *failed) {
  if (s == NULL) return NULL;
  char *d = strdup(s);
  if (d == NULL) *failed = true;
  return d;
}

int wg__rpc_tls_open(struct wg__rpc_tls **out, const char *cert_file, const char *key_file,
                     const char *client_ca_file, struct wg_error *err) {
  *out = NULL;
  if (cert_file == NULL || key_file == NULL)
    return wg_error_set(err, EINVAL, "TLS needs both a certificate file and a key file");
  struct wg__rpc_tls *t = calloc(1, sizeof(*t));
  if (t == NULL) return wg_error_set(err, ENOMEM, "out of memory for TLS");
  bool failed = pthread_mutex_init(&t->mu, NULL) != 0;
  t->cert_file = dup_or_null(cert_file, &failed);
  t->key_file = dup_or_null(key_file, &failed);
  t->client_ca_file = dup_or_null(client_ca_file, &failed);
  int rc = failed ? wg_error_set(err, ENOMEM, "out of memory for TLS") : load(t, err);
  if (rc != 0) {
    wg__rpc_tls_close(t);
    return rc;
  }
  *out = t;
  return 0;
}

grpc_server_credentials *wg__rpc_tls_credentials(struct wg__rpc_tls *t) {
  grpc_ssl_client_certificate_request_type req =
      t->client_ca_file != NULL ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  grpc_ssl_server_credentials_options *o =
      grpc_ssl_server_credentials_create_options_using_config_fetcher(req, fetch_config, t);
  return o != NULL ? grpc_ssl_server_credentials_create_with_options(o) : NULL;
}

int wg__rpc_tls_reload(struct wg__rpc_tls *t, struct wg_error *err) {
  if (t == NULL) return 0;
  return load(t, err);
}

void wg__rpc_tls_close(struct wg__rpc_tls *t) {
  if (t == NULL) return;
  if (t->pending != NULL) grpc_ssl_server_certificate_config_destroy(t->pending);
  pthread_mutex_destroy(&t->mu);
  free(t->cert_file);
  free(t->key_file);
  free(t->client_ca_file);
  free(t);
}
