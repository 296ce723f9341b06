/* wigeon: TLS for the rpc layer, inside src/rpc only: the server's certificate state (PEM files
 * read and checked with OpenSSL's libcrypto, handed to gRPC through a certificate config fetcher
 * so that a reload takes effect at the next handshake). wg_rpc_read_pem is in rpc.h. */
#ifndef WG_RPC_TLS_H
#define WG_RPC_TLS_H

#include <grpc/grpc_security.h>

#include "common/error.h"

struct wg__rpc_tls;

/* Reads and checks cert_file (a PEM chain, the server's certificate first), key_file (its PEM
 * private key, which must match) and client_ca_file (NULL, or PEM CA certificates: clients must
 * then present a certificate signed by one). EINVAL naming the file for any that is unreadable,
 * not PEM, or a key that does not match the certificate. */
int wg__rpc_tls_open(struct wg__rpc_tls **out, const char *cert_file, const char *key_file,
                     const char *client_ca_file, struct wg_error *err);
/* The server credentials (new reference) whose handshakes take the newest checked files. */
grpc_server_credentials *wg__rpc_tls_credentials(struct wg__rpc_tls *t);
/* Re-reads and checks the three files; on success the next handshake uses them, on error the
 * old ones stay and err says why. Thread-safe. */
int wg__rpc_tls_reload(struct wg__rpc_tls *t, struct wg_error *err);
/* After the gRPC server that used the credentials is destroyed. NULL ok. */
void wg__rpc_tls_close(struct wg__rpc_tls *t);

#endif
