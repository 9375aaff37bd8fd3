/* hub_digest.c — the hashes that name and verify hub blobs, over OpenSSL's
 * libcrypto: sha256 (LFS files: the blob's name is the sha256 of its
 * content) and git's blob id (other files: sha1 of "blob <size>\0" followed
 * by the content). Streaming, so a multi-gigabyte file is hashed as it
 * arrives rather than read back. */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "formats/hub_internal.h"

struct hub_digest {
    EVP_MD_CTX *ctx;
    hub_digest_kind kind;
    uint64_t size; /* for the git blob header */
};

static void digest_start(hub_digest *d) {
    EVP_DigestInit_ex(d->ctx, d->kind == HUB_DIGEST_SHA256 ? EVP_sha256() : EVP_sha1(), NULL);
    if (d->kind == HUB_DIGEST_GIT_BLOB) {
        char head[40];
        int n = snprintf(head, sizeof head, "blob %" PRIu64, d->size);
        EVP_DigestUpdate(d->ctx, head, (size_t)n + 1); /* with its NUL */
    }
}

hub_digest *hub_digest_new(hub_digest_kind kind, uint64_t size, q35_err *e) {
    hub_digest *d = calloc(1, sizeof *d);
    if (d) d->ctx = EVP_MD_CTX_new();
    if (!d || !d->ctx) {
        free(d);
        q35_err_set(e, Q35_ENOMEM, "out of memory (hash context)");
        return NULL;
    }
    d->kind = kind;
    d->size = size;
    digest_start(d);
    return d;
}

void hub_digest_update(hub_digest *d, const void *data, size_t n) {
    EVP_DigestUpdate(d->ctx, data, n);
}

void hub_digest_final_hex(hub_digest *d, char *hex) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(d->ctx, md, &n);
    for (unsigned int i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    hex[2 * n] = 0;
    digest_start(d);
}

void hub_digest_reset(hub_digest *d) {
    digest_start(d);
}

void hub_digest_free(hub_digest *d) {
    if (!d) return;
    EVP_MD_CTX_free(d->ctx);
    free(d);
}
