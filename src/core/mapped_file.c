/* mapped_file.c — mmap and small-file reading with errors that name the path. */
#include "core/mapped_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/err.h"

int q35_mapped_file_open(q35_mapped_file *f, const char *path, q35_err *e) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return q35_err_set(e, errno == ENOENT ? Q35_ENOTFOUND : Q35_EIO, "%s: cannot open: %s",
                           path, strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return q35_err_set(e, Q35_EIO, "%s: not a regular file", path);
    }
    void *p = NULL;
    if (st.st_size > 0) {
        p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int err = errno;
            close(fd);
            return q35_err_set(e, Q35_EIO, "%s: mmap failed: %s", path, strerror(err));
        }
    }
    close(fd);
    f->path = strdup(path);
    if (!f->path) {
        if (p) munmap(p, (size_t)st.st_size);
        return q35_err_set(e, Q35_ENOMEM, "%s: out of memory", path);
    }
    f->data = p;
    f->size = (size_t)st.st_size;
    return Q35_OK;
}

void q35_mapped_file_close(q35_mapped_file *f) {
    if (!f) return;
    if (f->data) munmap((void *)f->data, f->size);
    free(f->path);
    memset(f, 0, sizeof *f);
}

char *q35_read_text_file(const char *path, size_t max_bytes, size_t *len_out, q35_err *e) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        q35_err_set(e, errno == ENOENT ? Q35_ENOTFOUND : Q35_EIO, "%s: cannot open: %s", path,
                    strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        q35_err_set(e, Q35_EIO, "%s: not a regular file", path);
        return NULL;
    }
    if ((size_t)st.st_size > max_bytes) {
        fclose(fp);
        q35_err_set(e, Q35_EFORMAT, "%s: file is %lld bytes, more than the %zu allowed", path,
                    (long long)st.st_size, max_bytes);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(fp);
        q35_err_set(e, Q35_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    if (fread(buf, 1, n, fp) != n) {
        free(buf);
        fclose(fp);
        q35_err_set(e, Q35_EIO, "%s: short read", path);
        return NULL;
    }
    fclose(fp);
    buf[n] = 0;
    if (len_out) *len_out = n;
    return buf;
}

void q35_mapped_file_drop_pages(const void *p, size_t n) {
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + page - 1) / page * page, b = ((uintptr_t)p + n) / page * page;
    if (p && b > a) madvise((void *)a, b - a, MADV_DONTNEED);
}
