#ifndef COPENSSL_SHIM_H
#define COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>

// OpenSSL spells much of its API as function-like macros over SSL_CTX_ctrl and BIO flags,
// which Swift cannot import. They are spelled here once, as inline functions.

// A server context's fixed policy: TLS 1.2 and 1.3 only, no renegotiation, no compression,
// and the read and write buffers released while a connection is idle. With `resumption` 0,
// no session cache and no session tickets: every connection makes a full handshake.
static inline void ctls_configure_server(SSL_CTX *ctx, int resumption) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!resumption) {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
        SSL_CTX_set_num_tickets(ctx, 0);
    }
}

static inline void ctls_bio_set_retry_read(BIO *bio) { BIO_set_retry_read(bio); }
static inline void ctls_bio_clear_retry_flags(BIO *bio) { BIO_clear_retry_flags(bio); }

#endif
