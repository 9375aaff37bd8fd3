/* safetensors.h — a validating reader of .safetensors files (and of the
 * model.safetensors.index.json that ties shards together).
 *
 * Format: 8-byte little-endian header length N, N bytes of JSON mapping each
 * tensor name to {dtype, shape, data_offsets:[begin,end]} (offsets relative
 * to the byte after the header), then the data. Everything in the header is
 * checked before any tensor is handed out: dtype known, shape sane, size ==
 * numel * element size, offsets inside the file, no two tensors overlapping,
 * no duplicate names. Downstream code trusts what this file returns. */
#ifndef Q35_FORMATS_SAFETENSORS_H
#define Q35_FORMATS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/mapped_file.h"
#include "q35.h"

typedef enum q35_st_dtype {
    Q35_ST_F32,
    Q35_ST_F16,
    Q35_ST_BF16,
    Q35_ST_F64,
    Q35_ST_I8,
    Q35_ST_U8,
    Q35_ST_I16,
    Q35_ST_U16,
    Q35_ST_I32,
    Q35_ST_U32,
    Q35_ST_I64,
    Q35_ST_U64,
    Q35_ST_BOOL,
    Q35_ST_F8_E4M3,
    Q35_ST_F8_E5M2,
} q35_st_dtype;

#define Q35_ST_MAX_DIMS 8

typedef struct q35_st_tensor {
    char *name;
    q35_st_dtype dtype;
    int ndim;
    int64_t shape[Q35_ST_MAX_DIMS];
    const void *data; /* inside the map */
    size_t nbytes;
    size_t file_offset; /* absolute offset of data in the file, for messages */
    int file_index;     /* which file of a q35_st_set */
} q35_st_tensor;

/* All tensors of one checkpoint, across one or more files, sorted by name. */
typedef struct q35_st_set {
    q35_mapped_file *files;
    int n_files;
    q35_st_tensor *tensors;
    int n_tensors;
} q35_st_set;

const char *q35_st_dtype_name(q35_st_dtype d);
size_t q35_st_dtype_size(q35_st_dtype d);

/* Opens a checkpoint directory: model.safetensors.index.json when present
 * (every shard it names, except shards holding only tensors for which
 * `skip(name)` is true), else model.safetensors. Every file is mapped and
 * validated. On failure nothing is left open. Caller closes the set with
 * q35_st_set_close. `skip` may be NULL. */
int q35_st_set_open_dir(q35_st_set *set, const char *dir, int (*skip)(const char *name),
                        q35_err *e);

/* Opens exactly one .safetensors file as a set. */
int q35_st_set_open_file(q35_st_set *set, const char *path, q35_err *e);

/* Binary search by exact name; NULL when absent. */
const q35_st_tensor *q35_st_set_find(const q35_st_set *set, const char *name);

/* Unmaps the files unless `keep_files` (then the caller has taken
 * set->files and frees them), and frees the tensor table. */
void q35_st_set_close(q35_st_set *set, int keep_files);

#endif
